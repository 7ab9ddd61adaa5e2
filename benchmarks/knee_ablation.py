"""KNEEL ablation on ISBI 2015 (train 001-150, test Test1 151-300, senior annotator).

Each variant is the one-stage model (whole cephalogram at the cephalometric preset's stage-1 pixel size,
1.6 mm, all 19 landmarks) trained for the same short budget, changing one technique at a time:
wing vs L2 loss, HMP vs bottleneck block, mixup vs none. The budget is far below the committed
model's (CPU only), so the absolute errors are those of a coarse model; the comparison is the point.

    nice -n 19 python benchmarks/knee_ablation.py [--epochs 10] [--workdir /tmp/knee_ablation]

Writes benchmarks/results/knee_ablation.md and .json. Runs resume from their checkpoints.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from KneeLandmarksLib.augment import AugmentConfig
from KneeLandmarksLib.data import resolve_training_cases
from KneeLandmarksLib.presets import CEPHALOMETRIC
from KneeLandmarksLib.training import (
    TrainConfig,
    build_network,
    load_stage_samples,
    stage_errors,
    train_stage,
)
from LandmarkCoreLib.modelfile import load_model_file
from LandmarkCoreLib.progress import no_progress

RESULTS = Path(__file__).resolve().parent / "results"

VARIANTS = {
    "KNEEL (wing, HMP, mixup)": {},
    "L2 loss instead of wing": {"loss": "l2"},
    "bottleneck instead of HMP": {"block": "bottleneck"},
    "no mixup": {"mixup_alpha": 0.0},
}


def variant_config(changes: dict, epochs: int) -> TrainConfig:
    augment = AugmentConfig(mixup_alpha=changes.get("mixup_alpha", AugmentConfig.mixup_alpha))
    base = TrainConfig(stage=1, epochs=epochs, stage1_all_landmarks=True, augment=augment)
    return replace(base, **{k: v for k, v in changes.items() if k != "mixup_alpha"})


def summarise(errors: np.ndarray) -> dict:
    return {
        "mre_mm": float(errors.mean()),
        "sd_mm": float(errors.std()),
        **{f"sdr_{r}mm": float((errors <= r).mean() * 100) for r in (2.0, 2.5, 3.0, 4.0)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/knee_ablation"))
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    train_cases = resolve_training_cases("isbi:train")
    test_samples = load_stage_samples(
        resolve_training_cases("isbi:test1"), CEPHALOMETRIC.stage1.spacing_mm, no_progress, None
    )
    results = {}
    for i, (name, changes) in enumerate(VARIANTS.items()):
        output = args.workdir / f"variant{i}.pt"
        config = variant_config(changes, args.epochs)
        started = time.perf_counter()
        if not output.exists():
            train_stage(train_cases, CEPHALOMETRIC, config, output, args.workdir / f"variant{i}.ckpt")
        stored = load_model_file(output, "knee-model")
        network = build_network(stored.config["networks"]["stage1"])
        network.load_state_dict(stored.tensors["stage1"])
        errors = stage_errors(network, test_samples, CEPHALOMETRIC, 1, all_landmarks=True)
        results[name] = {**summarise(errors), "train_seconds": time.perf_counter() - started}
        print(name, results[name], flush=True)
    write_table(results, args.epochs)


def write_table(results: dict, epochs: int) -> None:
    lines = [
        "# KNEEL ablation, ISBI 2015 Test1 (trained on 001-150)",
        "",
        f"One-stage model at 1.6 mm/px (whole image, 19 landmarks), {epochs} epochs each, "
        "1 CPU thread, seed 0.",
        "",
        "| variant | MRE (mm) | SD | SDR 2 mm | 2.5 mm | 3 mm | 4 mm |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['mre_mm']:.2f} | {r['sd_mm']:.2f} | {r['sdr_2.0mm']:.1f} % | "
            f"{r['sdr_2.5mm']:.1f} % | {r['sdr_3.0mm']:.1f} % | {r['sdr_4.0mm']:.1f} % |"
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "knee_ablation.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (RESULTS / "knee_ablation.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
