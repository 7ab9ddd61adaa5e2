"""FaceLandmarks engine: synthetic unit tests (geometry, heatmaps, losses, methods, training resume,
pipeline, VGGFace2 importer, CLI) and one small real-data check of the bundled model."""

from __future__ import annotations

import json
import pickle
from dataclasses import replace

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from FaceLandmarksLib import cli
from FaceLandmarksLib.data import (
    CACHE_CONTEXT,
    FLIP_PERMUTATION,
    CachedSplit,
    augment_batch,
    box_from_points,
    crop_square,
    from_crop_coordinates,
    resample_square,
    to_crop_coordinates,
)
from FaceLandmarksLib.decoder import decode_heatmaps, gaussian_heatmaps
from FaceLandmarksLib.losses import (
    classifier_distillation_loss,
    coordinate_loss,
    encoder_distillation_loss,
    heatmap_loss,
)
from FaceLandmarksLib.methods import METHODS, HeatmapNet, freeze, init_from_source
from FaceLandmarksLib.pipeline import NO_FACE_PEAK, FaceModel, detect_landmarks
from FaceLandmarksLib.resnet import FaceClassifier
from FaceLandmarksLib.training import (
    MODEL_KIND,
    SourceConfig,
    TargetConfig,
    build_source,
    checkpoint_path,
    train_source,
    train_target,
)
from FaceLandmarksLib.vggface2_import import import_vggface2
from LandmarkCoreLib.errors import Cancelled, InputError, ModelFileError
from LandmarkCoreLib.modelfile import ModelFile, load_model_file, save_model_file
from LandmarkCoreLib.progress import CancelToken


def test_flip_permutation_is_a_mirror_involution():
    assert sorted(FLIP_PERMUTATION) == list(range(68))
    assert np.array_equal(FLIP_PERMUTATION[FLIP_PERMUTATION], np.arange(68))
    assert FLIP_PERMUTATION[36] == 45 and FLIP_PERMUTATION[48] == 54 and FLIP_PERMUTATION[30] == 30


def _dot_image(size: int, point: tuple[float, float]) -> torch.Tensor:
    yy, xx = np.mgrid[0:size, 0:size]
    blob = np.exp(-((xx - point[0]) ** 2 + (yy - point[1]) ** 2) / (2 * 2.0**2))
    return torch.from_numpy(np.repeat((blob * 255).astype(np.uint8)[None], 3, axis=0))


def _brightest(image: torch.Tensor) -> np.ndarray:
    grey = image.mean(0).numpy()
    grey = np.clip(grey - grey.max() * 0.5, 0, None)
    yy, xx = np.mgrid[0 : grey.shape[0], 0 : grey.shape[1]]
    return np.array([(grey * xx).sum(), (grey * yy).sum()]) / grey.sum()


def test_augmentation_moves_points_with_the_pixels():
    size_in, size_out = int(48 * CACHE_CONTEXT), 48
    point = (40.0, 30.0)
    images = torch.stack([_dot_image(size_in, point)] * 8)
    points = torch.zeros(8, 68, 2)
    points[:, 36] = torch.tensor(point)  # after a flip the dot is labelled 45
    out, moved = augment_batch(images, points, size_out, torch.Generator().manual_seed(3))
    for i in range(8):
        found = _brightest(out[i] - out[i].min())
        label = (
            36
            if torch.linalg.norm(moved[i, 36] - moved[i, 45]) > 0
            and abs(moved[i, 36] - torch.tensor(found)).sum() < abs(moved[i, 45] - torch.tensor(found)).sum()
            else 45
        )
        assert np.linalg.norm(moved[i, label].numpy() - found) < 0.6


def test_photometric_jitter_changes_the_pixels_but_not_the_points():
    images = torch.randint(
        0, 256, (16, 3, 72, 72), dtype=torch.uint8, generator=torch.Generator().manual_seed(1)
    )
    points = torch.rand(16, 68, 2) * 60 + 6
    plain, plain_points = augment_batch(images, points, 48, torch.Generator().manual_seed(2))
    jittered, jittered_points = augment_batch(
        images, points, 48, torch.Generator().manual_seed(2), photometric=1.0
    )
    assert torch.equal(plain_points, jittered_points)
    changed = (plain - jittered).abs().flatten(1).mean(1)
    assert (changed > 0.05).sum() >= 12  # nearly every image is changed (normalised units)
    rgb = jittered * torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) + torch.tensor(
        [0.485, 0.456, 0.406]
    ).view(1, 3, 1, 1)
    assert rgb.min() >= -1e-5 and rgb.max() <= 1 + 1e-5


def test_a_fourth_decoder_stage_halves_the_heatmap_stride():
    net = HeatmapNet(18, 8, 68, 8, decoder_stages=4).eval()
    assert net.heatmaps(torch.zeros(1, 3, 64, 64)).shape == (1, 68, 32, 32)
    assert (net.stride, net.cell_centre) == (2, 0.5)  # cell i covers input pixels 2i and 2i + 1


def test_crop_geometry_round_trip_and_resampling():
    points = np.array([[30.0, 40.0], [90.0, 60.0], [60.0, 110.0]])
    box = box_from_points(points)
    square = crop_square(box)
    crop_points = to_crop_coordinates(points, square, 64)
    assert np.allclose(from_crop_coordinates(crop_points, square, 64), points)
    rgb = np.zeros((150, 130, 3), np.float32)
    rgb[60, 90] = 1.0  # a single bright pixel at column 90, row 60
    crop = resample_square(rgb, square, 256)  # upsampling: no blur
    found = _brightest(torch.from_numpy(crop.transpose(2, 0, 1)))
    assert np.linalg.norm(found - crop_points[1] * 4 - 1.5) < 0.8  # 256/64 = 4 crop pixels per unit


def test_heatmap_decoding_is_subpixel():
    truth = torch.tensor([[[5.3, 7.8], [10.1, 2.45], [0.2, 23.4]]])
    coords, peaks = decode_heatmaps(gaussian_heatmaps(truth, 24, 1.0))
    assert torch.allclose(coords[:, :2], truth[:, :2], atol=0.02)  # interior: sub-pixel
    assert torch.allclose(coords[:, 2], truth[:, 2], atol=0.5)  # on the border: the arg-max cell
    assert peaks.min() > 0.7


def test_losses_vanish_on_agreement_and_grow_on_disagreement():
    a, b = torch.randn(4, 16, 3, 3), torch.randn(4, 16, 3, 3)
    assert encoder_distillation_loss(a, a) < 1e-6 < encoder_distillation_loss(a, b)
    z, w = torch.randn(4, 10), torch.randn(4, 10) * 5
    assert classifier_distillation_loss(z, z, 4.0) < 1e-9 < classifier_distillation_loss(z, w, 4.0)
    h = torch.rand(2, 3, 8, 8)
    assert heatmap_loss(h, h) == 0 and torch.isclose(heatmap_loss(h, h + 0.5), torch.tensor(0.25 * 64))
    centres = torch.tensor([[[6.3, 9.2], [12.0, 4.5]]])
    gaussians = gaussian_heatmaps(centres, 20, 1.0)
    # soft-argmax is pulled slightly towards the centre by the background; a 1-pixel shift costs ~2
    assert coordinate_loss(gaussians, centres) < 0.3 < 1.5 < coordinate_loss(gaussians, centres + 1.0)


def test_freezing_follows_each_method():
    net = HeatmapNet(18, 8, 68, 16)
    trainable = {
        name: {
            n.split(".")[1]
            for n, p in _frozen_copy(net, name).named_parameters()
            if p.requires_grad and n.startswith("encoder.")
        }
        for name in ("FE", "FTP", "FT")
    }
    assert trainable["FE"] == set() and trainable["FTP"] == {"layer4"}
    assert trainable["FT"] == {"conv1", "bn1", "layer1", "layer2", "layer3", "layer4"}


def _frozen_copy(net: HeatmapNet, method: str) -> HeatmapNet:
    copy = HeatmapNet(18, 8, 68, 16)
    copy.load_state_dict(net.state_dict())
    freeze(copy, METHODS[method])
    return copy


def test_source_of_another_architecture_is_refused_with_the_mismatch():
    with pytest.raises(InputError, match="ResNet-34 of width 8"):
        init_from_source(HeatmapNet(18, 8, 68, 16), FaceClassifier(34, 5, 8))
    wrong = ModelFile(
        "face-source",
        {"architecture": {"depth": 18, "width": 8, "n_classes": 5}},
        {"state_dict": FaceClassifier(34, 5, 8).state_dict()},
    )
    with pytest.raises(ModelFileError, match="ResNet-18"):
        build_source(wrong)


def _tiny_split(n: int = 6, size: int = 32) -> CachedSplit:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(
        0, 255, (n, 3, int(size * CACHE_CONTEXT), int(size * CACHE_CONTEXT)), dtype=torch.uint8, generator=g
    )
    points = torch.rand(n, 68, 2, generator=g) * size + size * 0.25
    return CachedSplit(
        images, points, torch.arange(n) % 3, [f"p{i % 3}_{i:02d}.jpg" for i in range(n)], ["p0", "p1", "p2"]
    )


def _tiny_source(split: CachedSplit, tmp_path) -> ModelFile:
    config = SourceConfig(width=8, input_size=32, epochs=1, batch_size=3)
    return train_source(split, config, tmp_path / "s.pt", log=lambda m: None)


def test_target_training_resumes_after_cancel_to_the_same_weights(tmp_path):
    split = _tiny_split()
    source = _tiny_source(split, tmp_path)
    config = TargetConfig(
        method="CTD-Com", n_labels=4, steps=4, batch_size=2, decoder_channels=8, checkpoint_every=1
    )
    straight = train_target(split, config, tmp_path / "a.pt", source, log=lambda m: None)
    token = CancelToken()

    def cancel_at_step_two(fraction, message):
        if fraction is not None and fraction >= 0.5:
            token.cancel()

    with pytest.raises(Cancelled):
        train_target(split, config, tmp_path / "b.pt", source, cancel_at_step_two, token, log=lambda m: None)
    assert checkpoint_path(tmp_path / "b.pt").is_file() and not (tmp_path / "b.pt").exists()
    resumed = train_target(split, config, tmp_path / "b.pt", source, log=lambda m: None)
    for key, value in straight.tensors["state_dict"].items():
        assert torch.allclose(value.float(), resumed.tensors["state_dict"][key].float(), atol=1e-5), key


def test_fine_tuning_starts_from_the_given_detector_and_refuses_another_family(tmp_path):
    """Zero learning-rate steps from an initial model keep its weights exactly (so they were loaded, not
    the source's); the written file records what it was tuned from and passes the load-time checks; an
    hourglass initial model for a ResNet method is refused."""
    split = _tiny_split()
    source = _tiny_source(split, tmp_path)
    config = TargetConfig(method="FT", n_labels=4, steps=2, batch_size=2, decoder_channels=8)
    first = train_target(split, config, tmp_path / "a.pt", source, log=lambda m: None)
    frozen_lr = replace(config, learning_rate=1e-7, seed=1)
    tuned = train_target(split, frozen_lr, tmp_path / "b.pt", source, log=lambda m: None, initial_model=first)
    for key, value in first.tensors["state_dict"].items():
        if value.is_floating_point() and "running" not in key:
            assert torch.allclose(value, tuned.tensors["state_dict"][key], atol=1e-5), key
    reloaded = load_model_file(tmp_path / "b.pt", "face-model")
    assert reloaded.config["fine_tuned_from"]["steps"] == 2
    hourglass = train_target(
        split,
        replace(config, method="HG", hourglass_width=4, hourglass_depth=2),
        tmp_path / "h.pt",
        log=lambda m: None,
    )
    with pytest.raises(InputError, match="is a hourglass network"):
        train_target(split, config, tmp_path / "c.pt", source, log=lambda m: None, initial_model=hourglass)


class _StubNet(torch.nn.Module):
    """Heatmaps with a Gaussian at fixed cells (or all zeros): known answers for the pipeline."""

    stride, cell_centre = 4, 1.5

    def __init__(self, cells: torch.Tensor | None) -> None:
        super().__init__()
        self.cells = cells

    def heatmaps(self, x):
        if self.cells is None:
            return torch.zeros(x.shape[0], 68, x.shape[-1] // 4, x.shape[-1] // 4)
        return gaussian_heatmaps(self.cells.expand(x.shape[0], -1, -1), x.shape[-1] // 4, 1.0)


@pytest.mark.parametrize(
    ("components", "direction"), [(1, (1, 0, 0, 1)), (3, (-1, 0, 0, -1)), (4, (1, 0, 0, 1))]
)
def test_pipeline_geometry_for_grey_rgb_and_rgba(components, direction):
    cells = torch.full((1, 68, 2), 4.0)
    cells[0, 0] = torch.tensor([10.25, 6.5])
    # point 0's mirror partner at point 0's mirrored place: the pipeline also looks at the flipped crop
    cells[0, 16] = torch.tensor([4.75, 6.5])
    model = FaceModel(_StubNet(cells), {"input_size": 64}, None)
    shape = (120, 100, components) if components > 1 else (120, 100)
    array = np.random.default_rng(0).integers(0, 255, shape)
    image = sitk.GetImageFromArray(array.astype(np.uint8), isVector=components > 1)
    image.SetSpacing((0.5, 0.5))
    image.SetOrigin((10.0, 20.0))
    image.SetDirection(direction)
    corners = [image.TransformContinuousIndexToPhysicalPoint(c) for c in ((20.0, 20.0), (100.0, 100.0))]
    box = (*np.min(corners, axis=0), *np.max(corners, axis=0))
    detection = detect_landmarks(model, image, box=box)  # pixels (20, 20)-(100, 100)
    crop_point = np.array([10.25, 6.5]) * 4 + 1.5  # heatmap cell -> crop pixel
    pixels = (crop_point + 0.5) * (80 / 64) - 40 + 60  # 80-pixel square centred on pixel (60, 60)
    expected = image.TransformContinuousIndexToPhysicalPoint(tuple(pixels))
    assert np.allclose(detection.landmarks.points[0], expected, atol=1e-3)
    assert not detection.flagged_no_face and detection.landmarks.labels[:2] == ["0", "1"]


def test_low_heatmap_peaks_are_flagged_as_no_face():
    model = FaceModel(_StubNet(None), {"input_size": 64}, None)
    detection = detect_landmarks(model, sitk.Image(90, 90, sitk.sitkUInt8), box=(0, 0, 89, 89))
    assert detection.flagged_no_face and detection.peak_confidence.max() < NO_FACE_PEAK
    assert "heatmaps show no face" in detection.reason


def test_pipeline_refuses_a_volume():
    model = FaceModel(_StubNet(None), {"input_size": 64}, None)
    with pytest.raises(InputError, match="2D image"):
        detect_landmarks(model, sitk.Image(20, 20, 5, sitk.sitkUInt8))


def _vggface2_layout(depth: int) -> dict[str, np.ndarray]:
    state = FaceClassifier(depth, 7).state_dict()
    return {k.removeprefix("encoder."): v.numpy() for k, v in state.items() if "num_batches" not in k}


def test_vggface2_pickle_maps_onto_resnet50(tmp_path):
    weights = _vggface2_layout(50)
    weights["layer3.2.conv2.weight"] = np.full_like(weights["layer3.2.conv2.weight"], 0.125)
    path = tmp_path / "resnet50_ft_weight.pkl"
    path.write_bytes(pickle.dumps(weights, protocol=2))
    model = import_vggface2(path)
    network = build_source(model)
    assert network.encoder.depth == 50 and network.fc.out_features == 7
    assert torch.all(network.encoder.layer3[2].conv2.weight == 0.125)
    torch_path = tmp_path / "state.pth"
    torch.save({"module." + k: torch.from_numpy(v) for k, v in weights.items()}, torch_path)
    assert torch.equal(
        import_vggface2(torch_path).tensors["state_dict"]["encoder.layer3.2.conv2.weight"],
        model.tensors["state_dict"]["encoder.layer3.2.conv2.weight"],
    )


def test_vggface2_wrong_architecture_and_code_are_refused(tmp_path):
    path = tmp_path / "resnet18.pkl"
    path.write_bytes(pickle.dumps(_vggface2_layout(18)))
    with pytest.raises(ModelFileError, match="not a ResNet-50 layout: missing"):
        import_vggface2(path)
    weights = _vggface2_layout(50)
    weights["layer1.0.conv1.weight"] = weights["layer1.0.conv1.weight"][:32]
    path.write_bytes(pickle.dumps(weights))
    with pytest.raises(ModelFileError, match="layer1.0.conv1.weight' has shape"):
        import_vggface2(path)

    class Evil:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))

    path.write_bytes(pickle.dumps({"fc.weight": Evil()}))
    with pytest.raises(ModelFileError, match="refusing"):
        import_vggface2(path)
    assert not (tmp_path / "pwned").exists()


def test_cli_detect_writes_markups_and_flags_no_face(tmp_path):
    net = HeatmapNet(18, 8, 68, 8)
    config = {
        "architecture": {
            "type": "resnet-simplebaselines",
            "n_points": 68,
            "depth": 18,
            "width": 8,
            "decoder_channels": 8,
        },
        "input_size": 32,
    }
    save_model_file(tmp_path / "m.pt", ModelFile(MODEL_KIND, config, {"state_dict": net.state_dict()}))
    sitk.WriteImage(sitk.Image(50, 40, sitk.sitkUInt8), str(tmp_path / "blank.png"))
    code = cli.main(
        [
            "detect",
            "-m",
            str(tmp_path / "m.pt"),
            "-o",
            str(tmp_path / "out"),
            "--keep-flagged",
            str(tmp_path / "blank.png"),
        ]
    )
    written = json.loads((tmp_path / "out" / "blank.mrk.json").read_text())
    assert len(written["markups"][0]["controlPoints"]) == 68
    # A blank image: the localiser finds no face; --keep-flagged writes the guess, so the input is done
    # (exit 0) and the batch log says that it was flagged.
    (record,) = [json.loads(line) for line in (tmp_path / "out" / "batch_log.jsonl").read_text().splitlines()]
    assert code == 0 and record["status"] == "done" and record["no_face_flagged"] is True
    assert cli.main(["detect", "-m", str(tmp_path / "nothing.pt"), "-o", str(tmp_path), "x.png"]) == 2


@pytest.mark.realdata
def test_bundled_model_on_real_test_faces():
    from FaceLandmarksLib.scoring import normalised_errors
    from LandmarkCoreLib.datasets import youtube_faces_samples
    from LandmarkCoreLib.images import read_image

    model = FaceModel.load()
    samples = youtube_faces_samples("test")[::40]
    preds, truth = [], []
    for sample in samples:
        detection = detect_landmarks(model, read_image(sample.image), box_from_points(sample.points))
        assert not detection.flagged_no_face
        preds.append(detection.landmarks.points)
        truth.append(sample.points)
    assert np.nanmean(normalised_errors(np.stack(preds), np.stack(truth))) < 0.10
