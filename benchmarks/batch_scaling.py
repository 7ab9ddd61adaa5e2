"""Batch throughput (inputs per minute) of ``knee-landmarks detect``: in-process vs a local Dask cluster of
1, 2 and 4 workers, on ISBI 2015 films from the data root. Wall time of the whole command (model load and
cluster start included), one torch thread per process.

    python benchmarks/batch_scaling.py --films 24 [--workers 1 2 4] [--output FILE.md]   # at most 300 films
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from LandmarkCoreLib.atomic import write_text_atomic
from LandmarkCoreLib.batch import SUMMARY_NAME
from LandmarkCoreLib.datasets import default_data_root


def timed_batch(films: list[Path], extra: list[str]) -> tuple[float, str]:
    """(seconds, summary line) of one detect run into a fresh folder."""
    with tempfile.TemporaryDirectory() as out:
        command = [Path(sys.executable).parent / "knee-landmarks", "detect", "--threads", "1", "-o", out]
        started = time.perf_counter()
        subprocess.run([*command, *extra, *map(str, films)], check=True, capture_output=True)
        seconds = time.perf_counter() - started
        return seconds, (Path(out) / SUMMARY_NAME).read_text().strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--films", type=int, default=24)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results/batch_scaling.md"))
    args = parser.parse_args()
    films = sorted((default_data_root() / "isbi2015_ceph" / "images").glob("*.jpg"))[: args.films]
    runs = [("in-process (serial)", [])] + [(f"--workers {n}", ["--workers", str(n)]) for n in args.workers]
    rows = []
    for name, extra in runs:
        seconds, summary = timed_batch(films, extra)
        rows.append(f"| {name} | {seconds:.1f} | {60 * len(films) / seconds:.1f} | {summary} |")
        print(rows[-1], flush=True)
    table = "\n".join(
        [
            f"# knee-landmarks detect: {len(films)} ISBI films, {os.cpu_count()} CPU cores, 1 thread each",
            "",
            "| executor | wall s | inputs / min | summary |",
            "|---|---|---|---|",
            *rows,
        ]
    )
    write_text_atomic(args.output, table + "\n")


if __name__ == "__main__":
    main()
