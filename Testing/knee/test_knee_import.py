"""Import of KNEEL snapshot folders: fold ensembles, the restricted unpickler, mismatch reports."""

from __future__ import annotations

import argparse
import os
import pickle

import pytest
import torch
from KneeLandmarksLib.kneel_import import (
    FoldEnsemble,
    UnsafePickleError,
    import_kneel_snapshots,
    read_session_args,
)
from KneeLandmarksLib.pipeline import KneeModel
from LandmarkCoreLib.errors import ModelFileError
from LandmarkCoreLib.networks import KneelHourglass


def kneel_net(n_points: int, width: int = 4) -> KneelHourglass:
    return KneelHourglass(n_points, width=width, depth=4, in_channels=3, upsample="bilinear")


def write_snapshot(folder, annotations: str, n_points: int, width: int = 4, seeds=(0, 1)) -> list:
    folder.mkdir(parents=True, exist_ok=True)
    states = []
    for fold, seed in enumerate(seeds):
        torch.manual_seed(seed)
        state = kneel_net(n_points, width).state_dict()
        payload = state if fold == 0 else {"model": state, "epoch": 3}  # bare and under 'model'
        torch.save(payload, folder / f"fold_{fold}_epoch_3.pth")
        states.append(state)
    args = argparse.Namespace(
        annotations=annotations,
        base_width=4,
        multiscale_hg=True,
        use_se=False,
        se_ratio=16,
        use_drop=True,
        lc_spacing=1.0,
        hc_spacing=0.3,
        crop_x=64,
        crop_y=64,
    )
    (folder / "session.pkl").write_bytes(pickle.dumps({"args": [args], "note": "recorded"}))
    return states


@pytest.fixture()
def snapshots(tmp_path):
    lc = write_snapshot(tmp_path / "lc", "lc", 1)
    hc = write_snapshot(tmp_path / "hc", "hc", 16)
    return tmp_path, lc, hc


def test_import_builds_a_fold_ensemble_that_averages_outputs(snapshots):
    root, _, hc_states = snapshots
    import_kneel_snapshots(root / "lc", root / "hc", root / "kneel.pt")
    model = KneeModel.load(root / "kneel.pt")
    assert isinstance(model.stage2, FoldEnsemble) and len(model.stage2.folds) == 2
    assert model.preset.stage2.spacing_mm == 0.3 and model.preset.stage1.size == (64, 64)
    x = torch.randn(1, 3, 64, 64)
    folds = []
    for state in hc_states:
        net = kneel_net(16).eval()
        net.load_state_dict(state)
        folds.append(net(x))
    with torch.no_grad():
        assert torch.allclose(model.stage2(x), (folds[0] + folds[1]) / 2, atol=1e-6)


def test_cli_import_then_load(snapshots):
    from KneeLandmarksLib.cli import main

    root, _, _ = snapshots
    argv = ["import-kneel", "--roi-snapshot", str(root / "lc"), "--landmark-snapshot", str(root / "hc")]
    assert main([*argv, "-o", str(root / "cli.pt")]) == 0
    assert KneeModel.load(root / "cli.pt").landmark_names[0] == "tibia 0"


def test_session_args_are_read_without_argparse_behaviour(snapshots):
    root, _, _ = snapshots
    args = read_session_args(root / "hc" / "session.pkl")
    assert args["base_width"] == 4 and args["annotations"] == "hc"


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "session.pkl"
    path.write_bytes(pickle.dumps({"args": [_Evil(marker)]}))
    with pytest.raises(UnsafePickleError, match="system"):
        read_session_args(path)
    assert not marker.exists()


def test_mismatching_checkpoint_lists_the_differences(snapshots):
    root, _, _ = snapshots
    wide = write_snapshot(root / "wide", "hc", 16, width=8)  # session says width 4
    assert wide
    with pytest.raises(ModelFileError) as excinfo:
        import_kneel_snapshots(root / "lc", root / "wide", root / "bad.pt")
    assert "shape of layer1.0.weight: checkpoint (8, 3, 7, 7), network (4, 3, 7, 7)" in str(excinfo.value)

    state = torch.load(root / "hc" / "fold_0_epoch_3.pth", weights_only=True)
    state["extra.weight"] = state.pop("out_block.0.bias")
    torch.save(state, root / "hc" / "fold_0_epoch_3.pth")
    with pytest.raises(ModelFileError) as excinfo:
        import_kneel_snapshots(root / "lc", root / "hc", root / "bad.pt")
    message = str(excinfo.value)
    assert "missing: out_block.0.bias" in message and "unexpected: extra.weight" in message


def test_reference_deep_pipeline_model_loads_and_agrees():
    """deep-pipeline 0.2.5 (the authors' building blocks) as the reference, when it is importable.

    It is not a dependency: its requirements replace this torch and pull TensorFlow, so the reference is
    only available where someone put its source on PYTHONPATH."""
    modules = pytest.importorskip("deeppipeline.keypoints.models.modules")
    from deeppipeline.common.modules import conv_block_1x1
    from torch import nn

    class Reference(nn.Module):  # the authors' HourglassNet layout (KNEEL repository), bw=4, depth 4
        def __init__(self, bw=4, n_out=16):
            super().__init__()
            block = modules.MultiScaleHGResidual
            self.layer1 = nn.Sequential(
                nn.Conv2d(3, bw, 7, 2, 3),
                nn.BatchNorm2d(bw),
                nn.ReLU(True),
                block(bw, bw * 2),
                nn.MaxPool2d(2),
            )
            self.layer2 = nn.Sequential(block(bw * 2, bw * 2), block(bw * 2, bw * 2), block(bw * 2, bw * 4))
            self.hourglass = modules.Hourglass(4, bw * 4, bw * 4, bw * 8, "bilinear", True)
            self.mixer = nn.Sequential(
                nn.Dropout2d(0.25),
                conv_block_1x1(bw * 8, bw * 8),
                nn.Dropout2d(0.25),
                conv_block_1x1(bw * 8, bw * 4),
            )
            self.out_block = nn.Sequential(nn.Conv2d(bw * 4, n_out, 1))
            self.sagm = modules.SoftArgmax2D()

        def forward(self, x):
            return self.sagm(self.out_block(self.mixer(self.hourglass(self.layer2(self.layer1(x))))))

    torch.manual_seed(0)
    reference = Reference().eval()
    ours = kneel_net(16)
    ours.load_state_dict(reference.state_dict())
    ours.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(ours(x), reference(x), atol=1e-5)
