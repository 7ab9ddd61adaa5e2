"""One-shot landmark detection on human anatomy: the MNI152 2009c T1 template (1 mm) with its 32 AFIDs.

Reference = the template, SOI = its head mask from the module's own tool (Otsu threshold, largest
component, holes filled); validation and targets = copies of the template in random rigid poses (+-45 deg
per axis, +-20 mm), mildly warped (<= 2 mm), with noise, on other voxel grids (1-2 mm, some left-handed), the
landmarks moved by the same transforms. Two faulty copies check the plausibility gates: the z spacing read 3x
wrong and a header mirrored by mistake; both must be refused. Every setting is derived from the SOI.

    python benchmarks/oneshot_human_benchmark.py [--threads 2] [--workdir outputs/oneshot_human]

Peak memory is the process's maximum resident set size after training (before the targets are made).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch
from LandmarkCoreLib.atomic import write_text_atomic
from LandmarkCoreLib.datasets import default_data_root
from LandmarkCoreLib.errors import LandmarkError
from LandmarkCoreLib.evaluation import markdown_table, summarize_errors
from LandmarkCoreLib.landmarks import read_landmarks
from OneShotLandmarksLib.config import TrainingConfig
from OneShotLandmarksLib.model import OneShotModel
from OneShotLandmarksLib.pipeline import detect_landmarks, train_model
from OneShotLandmarksLib.posing import PoseRecipe, posed_copy
from OneShotLandmarksLib.soi import threshold_soi

FOLDER = "human_brain_mri_afids"
IMAGE, LANDMARKS = "tpl-MNI152NLin2009cAsym_res-01_T1w.nii.gz", "tpl-MNI152NLin2009cAsym_afids.fcsv"
VALIDATION_SEED = 100
TARGETS = {  # name: (seed, voxel size mm, left-handed grid)
    "posed_1": (1, (1.0, 1.0, 1.0), False),
    "posed_2": (2, (1.0, 1.0, 1.0), True),
    "posed_3": (3, (1.2, 1.2, 1.2), False),
    "posed_4": (4, (1.5, 1.5, 1.5), True),
    "posed_5": (5, (1.0, 1.0, 1.5), False),
    "posed_6": (6, (2.0, 2.0, 2.0), False),
}
TRAINING = TrainingConfig(width=16, max_epochs=10)  # CPU budget; every length derived from the SOI
RADII = (1.0, 1.5, 3.0)


def peak_memory_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def z_spacing_tripled(image: sitk.Image) -> sitk.Image:
    wrong = sitk.Image(image)
    wrong.SetSpacing([*image.GetSpacing()[:2], 3 * image.GetSpacing()[2]])
    return wrong


def header_mirrored(image: sitk.Image) -> sitk.Image:
    """The voxels flipped along i with the header kept: the anatomy flips left-right in world space."""
    flipped = sitk.Flip(image, [True, False, False])
    flipped.CopyInformation(image)
    return flipped


def train(reference: sitk.Image, landmarks, workdir: Path) -> tuple[OneShotModel, dict]:
    path = workdir / "model_mni152.pt"
    if path.exists():
        return OneShotModel.load(path), {"cached": True}
    validation, _, pose = posed_copy(reference, landmarks, VALIDATION_SEED)
    started, cpu = time.perf_counter(), time.process_time()
    model = train_model(
        reference,
        landmarks,
        threshold_soi(reference, what="reference"),
        validation,
        threshold_soi(validation, what="validation"),
        TRAINING,
        progress=lambda f, m: print(f"  [train] {m}", file=sys.stderr, flush=True),
    )
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    model.save(path)
    return model, {
        "seconds": seconds,
        "cpu": cpu,
        "peak_memory_mb": peak_memory_mb(),
        "validation_pose": pose,
    }


def detect(model: OneShotModel, name: str, image: sitk.Image, truth) -> dict:
    started, cpu = time.perf_counter(), time.process_time()
    try:
        result = detect_landmarks(model, image)
    except LandmarkError as exc:
        print(f"  {name}: FAILED {exc}", file=sys.stderr, flush=True)
        return {"target": name, "error": str(exc), "seconds": time.perf_counter() - started}
    errors = np.linalg.norm(result.landmarks.points - truth.points, axis=1)
    print(
        f"  {name}: mean {errors.mean():.2f} mm, {result.timings['total']:.1f} s", file=sys.stderr, flush=True
    )
    scores = result.rotation_scores
    return {
        "target": name,
        "errors": errors.tolist(),
        "seconds": time.perf_counter() - started,
        "cpu": time.process_time() - cpu,
        "timings": result.timings,
        "scale_ratios": scores.get("scale_ratios"),
        "handedness": scores.get("handedness"),
    }


def run(workdir: Path) -> dict:
    folder = default_data_root() / FOLDER
    reference = sitk.ReadImage(str(folder / IMAGE))
    landmarks = read_landmarks(folder / LANDMARKS)
    model, training = train(reference, landmarks, workdir)
    records, poses = [], {}
    for name, (seed, spacing, left_handed) in TARGETS.items():
        image, truth, poses[name] = posed_copy(
            reference, landmarks, seed, PoseRecipe(spacing_mm=spacing, left_handed_grid=left_handed)
        )
        records.append(detect(model, name, image, truth))
        if name == "posed_1":
            faults = [
                detect(model, "posed_1, z spacing read 3x", z_spacing_tripled(image), truth),
                detect(model, "posed_1, header mirrored", header_mirrored(image), truth),
            ]
    return {"model": model, "training": training, "records": records, "faults": faults, "poses": poses}


def report(outcome: dict, threads: int) -> str:
    model, training, records = outcome["model"], outcome["training"], outcome["records"]
    done = [r for r in records if "errors" in r]
    errors = np.array([r["errors"] for r in done])
    summary = summarize_errors(errors, model.landmarks.labels, [r["target"] for r in done], radii=RADII)
    derivation = model.derivation
    lines = [
        "# One-shot landmarks, human brain MRI: MNI152 2009c T1 (1 mm), 32 AFIDs, posed + warped copies",
        "",
        f"SOI: head mask (Otsu, largest component, holes filled), bounding-sphere radius "
        f"{derivation['soi_radius_mm']:.1f} mm, scale {derivation['factor']:g} x the mouse skull. Derived: "
        + ", ".join(
            f"{k} = {getattr(model.training, k, getattr(model.detection, k, None))}"
            for k in derivation["derived"]
        )
        + f"; working cube {model.cube_size} voxels.",
        "",
        f"Training: {training.get('seconds', model.training_summary['total_seconds']):.0f} s "
        f"({training.get('cpu', float('nan')):.0f} s CPU), "
        f"{model.training_summary['epochs']} epochs (U-Net width {model.training.width}), peak memory "
        f"{training.get('peak_memory_mb', float('nan')):.0f} MB, {threads} threads (torch and ITK); 2 CPU "
        f"cores shared with other jobs (load average at the end {os.getloadavg()[0]:.1f}).",
        "",
        "| target | pose (deg; mm) | voxel (mm) | mean (mm) | max (mm) | detection (s) | CPU (s) "
        "| scale ratios |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        seed, spacing, left = TARGETS[r["target"]]
        pose = outcome["poses"][r["target"]]
        where = f"{pose['angles_deg']}; {pose['translation_mm']}"
        grid = "x".join(f"{s:g}" for s in spacing) + (" (det -1)" if left else "")
        if "errors" not in r:
            lines.append(
                f"| {r['target']} | {where} | {grid} | FAILED: {r['error']} | | {r['seconds']:.1f} | | |"
            )
            continue
        e = np.asarray(r["errors"])
        ratios = ", ".join(f"{v:.2f}" for v in r["scale_ratios"])
        lines.append(
            f"| {r['target']} | {where} | {grid} | {e.mean():.2f} | {e.max():.2f} | {r['seconds']:.1f} | "
            f"{r['cpu']:.1f} | {ratios} |"
        )
    lines += ["", "Faulty copies of posed_1 (must be refused):", ""]
    for fault in outcome["faults"]:
        verdict = fault.get("error") or f"NOT REFUSED, mean {np.mean(fault['errors']):.2f} mm"
        lines.append(f"- {fault['target']}: {verdict}")
    lines += ["", markdown_table(summary, "one-shot: per landmark (mm)")]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=Path("outputs/oneshot_human"))
    parser.add_argument("--results", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(args.threads)
    args.workdir.mkdir(parents=True, exist_ok=True)
    outcome = run(args.workdir)
    text = report(outcome, args.threads)
    print(text)
    write_text_atomic(args.results / "oneshot_human_mni152.md", text)
    records = {k: outcome[k] for k in ("training", "records", "faults", "poses")}
    write_text_atomic(args.workdir / "records_mni152.json", json.dumps(records, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
