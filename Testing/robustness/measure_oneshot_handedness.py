"""Measure the one-shot handedness correlations on the mouse skulls (benchmark model: reference C57BL6_J_,
validation BALB_CBYJ_): every other subject as read and with its header mirrored (voxels flipped along i,
header kept); a refused target's correlations are read from its message.

    python Testing/robustness/measure_oneshot_handedness.py [--workdir outputs/oneshot] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch
from LandmarkCoreLib.datasets import mouse_skull_subjects
from LandmarkCoreLib.errors import LandmarkError
from OneShotLandmarksLib.pipeline import detect_landmarks

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from oneshot_benchmark import REFERENCE, VALIDATION, trained_model  # noqa: E402


def header_mirrored(image: sitk.Image) -> sitk.Image:
    flipped = sitk.Flip(image, [True, False, False])
    flipped.CopyInformation(image)
    return flipped


def measure(model, volume: sitk.Image, truth) -> dict:
    """Handedness correlations, warnings or the refusal, and the mean error against ``truth`` (mm)."""
    try:
        result = detect_landmarks(model, volume, device="cpu")
    except LandmarkError as exc:
        found = re.search(r"correlation ([\d.]+) through a reflection vs ([\d.]+) as read", str(exc))
        return {
            "refused": str(exc),
            **({"mirrored": float(found[1]), "as_read": float(found[2])} if found else {}),
        }
    errors = np.linalg.norm(result.landmarks.points - truth.points, axis=1)
    return {
        **result.rotation_scores["handedness"],
        "warnings": result.warnings,
        "mean_error_mm": errors.mean(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", type=Path, default=Path("outputs/oneshot"))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(args.threads)
    args.workdir.mkdir(parents=True, exist_ok=True)
    subjects = {s.name: s for s in mouse_skull_subjects()}
    model = trained_model(subjects, REFERENCE, VALIDATION, args.workdir)
    rows = []
    for name, subject in subjects.items():
        if name in (REFERENCE, VALIDATION):
            continue
        truth = subject.read_landmarks().subset(model.landmarks.labels)
        image = subject.read_image()
        for case, volume in (("as read", image), ("header mirrored", header_mirrored(image))):
            rows.append({"target": name, "case": case, **measure(model, volume, truth)})
            print(json.dumps(rows[-1]), flush=True)
    (args.workdir / "handedness_measurements.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
