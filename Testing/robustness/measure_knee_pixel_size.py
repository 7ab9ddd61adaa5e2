"""Measure the knee model's plausibility numbers on the ISBI films at their true pixel size (0.1 mm) and
at a wrong one (double, half): per film and orientation (as given, mirrored) the shape-model distance and
size z-score of the refined and the stage-2 landmarks, stage 2's heatmap confidence, how far stage 3 moved
the landmarks, stage 2's confidence when the film is read at other pixel sizes (the given one times
SCALE_FACTORS), and the verdict of the current rules. One JSON line per film and pixel size.

    python Testing/robustness/measure_knee_pixel_size.py -o knee_pixel_size.jsonl [--sizes 0.1 0.2 0.05]

With ``--pipeline`` only the verdict of ``detect_landmarks`` (the rules in force) is recorded.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from KneeLandmarksLib.data import scale_array_to
from KneeLandmarksLib.image_content import check_image_content
from KneeLandmarksLib.pipeline import (
    Detection,
    KneeModel,
    check_field_of_view,
    default_model_path,
    detect_landmarks,
    flipped,
    judge,
    prepare_image,
    refine_landmarks,
    roi_centre,
    run_stage,
)
from LandmarkCoreLib.datasets import isbi_cases
from LandmarkCoreLib.errors import InputError

SCALE_FACTORS = (0.5, 0.71, 1.41, 2.0)


def stage2_confidence(model: KneeModel, array: np.ndarray, spacing: float) -> float:
    (scaled,) = scale_array_to(array, (spacing, spacing), [model.preset.stage2.spacing_mm])
    centre = roi_centre(model, scaled, False, False)
    return run_stage(model.stage2, scaled, centre, model.preset.stage2, False, model.config)[1]


def orientation_record(model: KneeModel, scaled: list, spacing: float) -> tuple[dict, Detection]:
    centre = roi_centre(model, scaled[0], False, False)
    indices, confidence = run_stage(model.stage2, scaled[0], centre, model.preset.stage2, False, model.config)
    stage2 = scaled[0].to_original(indices)
    refined = refine_landmarks(model, scaled[1], stage2, False)
    shape = model.shape_model
    fit, fit2 = shape.measure(refined * spacing), shape.measure(stage2 * spacing)
    moved = np.linalg.norm(refined - stage2, axis=1) * spacing
    record = {
        "distance": fit.distance,
        "size_z": fit.size_z,
        "stage2_distance": fit2.distance,
        "stage2_size_z": fit2.size_z,
        "confidence": confidence,
        "stage3_moved_mean_mm": float(moved.mean()),
        "stage3_moved_max_mm": float(moved.max()),
    }
    return record, Detection(refined, confidence)


def film_record(model: KneeModel, image, spacing: float) -> dict:
    image, array = prepare_image(image)
    try:
        check_field_of_view(image, (spacing, spacing), model.preset)
        scaled = scale_array_to(
            array, (spacing, spacing), [model.preset.stage2.spacing_mm, model.preset.stage3.spacing_mm]
        )
        check_image_content(scaled[0].array)
    except InputError as exc:
        return {"verdict": "refused before the networks", "reason": str(exc)}
    given, first = orientation_record(model, scaled, spacing)
    mirrored, second = orientation_record(model, [flipped(s) for s in scaled], spacing)
    orientation = np.array([spacing, spacing])
    verdicts = [judge(model, d, orientation) for d in (first, second)]
    if verdicts[0].facing_right:
        verdict = "accepted as given"
    else:
        best = max(verdicts, key=lambda v: (v.acceptable, v.detection.confidence))
        verdict = (
            ("accepted mirrored" if best is verdicts[1] else "accepted as given")
            if best.acceptable
            else "refused"
        )
    rescaled = {f: stage2_confidence(model, array, f * spacing) for f in SCALE_FACTORS}
    return {"verdict": verdict, "given": given, "mirrored": mirrored, "confidence_at_factor": rescaled}


def pipeline_record(model: KneeModel, image, spacing: float) -> dict:
    try:
        detect_landmarks(model, image, pixel_size_mm=spacing)
    except InputError as exc:
        return {"verdict": "refused", "reason": str(exc)}
    return {"verdict": "accepted"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--sizes", type=float, nargs="+", default=[0.1, 0.2, 0.05])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--films", nargs="*", help="film numbers (default: all 300)")
    parser.add_argument("--pipeline", action="store_true", help="only the verdict of detect_landmarks")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = KneeModel.load(default_model_path())
    with open(args.output, "w", encoding="utf-8") as stream:
        for case in isbi_cases("all"):
            if args.films and case.case_id not in args.films:
                continue
            image = case.read_image()
            for size in args.sizes:
                record = (pipeline_record if args.pipeline else film_record)(model, image, size)
                row = {"film": case.case_id, "pixel_size_mm": size, **record}
                stream.write(json.dumps(row) + "\n")
                stream.flush()


if __name__ == "__main__":
    main()
