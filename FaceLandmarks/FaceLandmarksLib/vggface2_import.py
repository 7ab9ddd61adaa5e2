"""Import the VGGFace2 ResNet-50 weights (Cao et al. 2018) as a 'face-source' model.

Supported formats (as published; nothing here has been run on the real files, which cannot be
downloaded in this environment -- the layout mapping is tested on synthetic files of that layout):

1. ``resnet50_ft_weight.pkl`` / ``resnet50_scratch_weight.pkl`` -- the Caffe models of the VGGFace2
   authors converted to a Python pickle of ``{layer name: numpy array}`` with torchvision-style names
   (``conv1.weight``, ``bn1.running_mean``, ``layer1.0.conv1.weight``, ``layer1.0.downsample.0.weight``,
   ``fc.weight`` (8631 x 2048) ...), as read by ``cydonia999/VGGFace2-pytorch`` (``utils.load_state_dict``).
   It is read with a restricted unpickler that only rebuilds numpy arrays and plain containers, so a
   file containing code is refused instead of executed.
2. a PyTorch state dict (``.pth``/``.pt``) of the same names, read with ``torch.load(weights_only=True)``
   (a ``module.`` prefix from DataParallel is removed).

The Caffe ResNet-50 strides its bottlenecks in the first 1x1 convolution, as :class:`resnet.Bottleneck`
does.  Differences that remain: the Caffe max-pool uses ``ceil_mode`` without padding (ours pads by
1), and the authors feed BGR images minus the mean (91.4953, 103.8827, 131.0912) without scaling, while
this engine trains its targets with ImageNet RGB normalisation -- fine-tuning adapts to this, but the
imported classifier's identity scores on our normalisation are not those of the paper.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np
import torch
from LandmarkCoreLib.errors import ModelFileError
from LandmarkCoreLib.modelfile import ModelFile

from .resnet import FaceClassifier

VGGFACE2_CLASSES = 8631

_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("collections", "OrderedDict"),
    ("_codecs", "encode"),  # how protocol-2 pickles store bytes
}


class _ArraysOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(
                f"refusing to load '{module}.{name}' (only numpy arrays are allowed)"
            )
        return super().find_class(module, name)


def read_weights(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """{layer name: array} from a VGGFace2 pickle or a PyTorch state dict, without executing code."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"VGGFace2 weights '{path}': file does not exist")
    data = path.read_bytes()
    if path.suffix == ".pkl":
        try:
            weights = _ArraysOnlyUnpickler(io.BytesIO(data), encoding="latin1").load()
        except Exception as exc:
            raise ModelFileError(f"VGGFace2 weights '{path}': not a pickle of numpy arrays: {exc}") from None
    else:
        try:
            weights = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ModelFileError(f"VGGFace2 weights '{path}': not a PyTorch state dict: {exc}") from None
        weights = weights.get("state_dict", weights) if isinstance(weights, dict) else weights
    if not isinstance(weights, dict) or not weights:
        raise ModelFileError(f"VGGFace2 weights '{path}': expected a dictionary of layer weights")
    return {
        k.removeprefix("module."): np.asarray(v.numpy() if torch.is_tensor(v) else v)
        for k, v in weights.items()
    }


def map_to_classifier(weights: dict[str, np.ndarray], what: str) -> tuple[dict[str, torch.Tensor], int]:
    """Our FaceClassifier state dict from VGGFace2/torchvision names; ModelFileError naming any mismatch."""
    if "fc.weight" not in weights:
        raise ModelFileError(f"{what}: no 'fc.weight' (identity classifier) -- not a VGGFace2 ResNet")
    n_classes = int(weights["fc.weight"].shape[0])
    network = FaceClassifier(50, n_classes)
    expected = network.state_dict()
    ours = {("encoder." + k if not k.startswith("fc.") else k): v for k, v in weights.items()}
    missing = [k for k in expected if k not in ours and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in ours if k not in expected]
    if missing or unexpected:
        raise ModelFileError(
            f"{what}: not a ResNet-50 layout: missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}"
        )
    state = {}
    for key, target in expected.items():
        if key.endswith("num_batches_tracked"):
            state[key] = target
            continue
        value = ours[key]
        if tuple(value.shape) != tuple(target.shape):
            raise ModelFileError(
                f"{what}: layer '{key.removeprefix('encoder.')}' has shape {tuple(value.shape)}, "
                f"a ResNet-50 needs {tuple(target.shape)}"
            )
        state[key] = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
    return state, n_classes


def import_vggface2(path: str | os.PathLike, input_size: int = 224) -> ModelFile:
    """A 'face-source' model file made from published VGGFace2 ResNet-50 weights."""
    from .training import SOURCE_KIND

    state, n_classes = map_to_classifier(read_weights(path), f"VGGFace2 weights '{path}'")
    config = {
        "architecture": {"depth": 50, "width": 64, "n_classes": n_classes},
        "input_size": input_size,
        "classes": [str(i) for i in range(n_classes)],
        "imported_from": str(Path(path).name),
        "input_normalisation_of_origin": "BGR minus mean (91.4953, 103.8827, 131.0912), 0-255",
        "metrics": {},
    }
    return ModelFile(SOURCE_KIND, config, {"state_dict": state})
