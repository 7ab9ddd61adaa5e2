"""End to end on 3 real mouse skulls with reduced settings (small U-Net, few epochs): train on one,
validate on another, detect the third (scanned in another pose) through the CLI."""

from __future__ import annotations

import numpy as np
import pytest
from LandmarkCoreLib.batch import iter_records
from LandmarkCoreLib.datasets import mouse_skull_subjects
from LandmarkCoreLib.landmarks import read_landmarks
from OneShotLandmarksLib import cli
from OneShotLandmarksLib.orientation import rotation_angle_deg

REFERENCE, VALIDATION, TARGET = "C57BL6_J_", "BALB_CBYJ_", "A_J_"


@pytest.mark.realdata
@pytest.mark.slow
def test_train_and_detect_three_mouse_skulls(data_root, tmp_path):
    subjects = {s.name: s for s in mouse_skull_subjects(data_root)}
    ref, val, target = subjects[REFERENCE], subjects[VALIDATION], subjects[TARGET]
    model = tmp_path / "model.pt"
    code = cli.main(
        [
            "train",
            "--reference",
            str(ref.image),
            "--reference-landmarks",
            str(ref.landmarks),
            "--reference-soi",
            str(ref.bone_mask),
            "--validation",
            str(val.image),
            "--validation-soi",
            str(val.bone_mask),
            "-o",
            str(model),
            "--width",
            "16",
            "--max-epochs",
            "8",
            "--volumes-per-epoch",
            "2",
            "--progress-format",
            "jsonl",
        ]
    )
    assert code == 0 and model.exists()
    out = tmp_path / "detected"
    assert (
        cli.main(
            ["detect", "-m", str(model), "-o", str(out), "--progress-format", "jsonl", str(target.image)]
        )
        == 0
    )
    detected = read_landmarks(out / f"{TARGET}.mrk.json")
    truth = read_landmarks(target.landmarks).subset(detected.labels)
    errors = np.linalg.norm(detected.points - truth.points, axis=1)
    # the target's pose differs from the reference's by a large rotation: the method must undo it
    reference = read_landmarks(ref.landmarks).subset(detected.labels)
    a, b = reference.points - reference.points.mean(0), truth.points - truth.points.mean(0)
    u, _, vt = np.linalg.svd(b.T @ a)
    assert rotation_angle_deg(np.eye(3), u @ vt) > 20
    assert len(detected) == 45
    assert errors.mean() < 0.6, errors
    (record,) = iter_records(out)
    assert record["status"] == "done" and 1 <= len(record["centre_iterations"]) <= 8
    assert (out / f"{TARGET}_qc.png").exists()
