"""Batch detection on a real Dask cluster (scheduler + two workers on 127.0.0.1, started with the `dask` CLI):
the same outputs as in-process, nothing lost when a worker is killed, an input that kills workers fails."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from LandmarkCoreLib.batch import iter_records, plan_batch, run_batch
from LandmarkCoreLib.landmarks import read_landmarks

distributed = pytest.importorskip("distributed", reason="install the .[dask] extra (scripts/install.sh does)")
BIN = Path(sys.executable).parent
FILMS = [f"{i:03d}.jpg" for i in range(151, 156)]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory):
    """``dask scheduler`` and two ``dask worker`` processes (one thread each) on 127.0.0.1."""
    address = f"tcp://127.0.0.1:{_free_port()}"
    log = tmp_path_factory.mktemp("dask") / "cluster.log"
    with open(log, "w") as out:
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        processes = [
            subprocess.Popen(
                [
                    BIN / "dask",
                    "scheduler",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    address.rsplit(":", 1)[1],
                    "--no-dashboard",
                ],
                stdout=out,
                stderr=out,
                env=env,
            )
        ]
        client = distributed.Client(address, timeout="60s")
        for _ in range(2):
            processes.append(
                subprocess.Popen(
                    [
                        BIN / "dask",
                        "worker",
                        address,
                        "--nthreads",
                        "1",
                        "--host",
                        "127.0.0.1",
                        "--no-dashboard",
                    ],
                    stdout=out,
                    stderr=out,
                    env=env,
                )
            )
        client.wait_for_workers(2, timeout=120)
        yield address, client
        client.close()
        for process in reversed(processes):
            process.send_signal(signal.SIGINT)
        for process in processes:
            process.wait(timeout=30)


def _run(command: list) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, encoding="utf-8", errors="replace", timeout=300)


def _points(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: read_landmarks(p).points for p in sorted(folder.glob("*.mrk.json"))}


@pytest.mark.realdata
def test_knee_batch_on_two_workers_equals_the_in_process_run(
    scheduler, data_root, tmp_path, knee_detect_command
):
    address, client = scheduler
    films = [str(data_root / "isbi2015_ceph" / "images" / name) for name in FILMS[:2]]
    serial = _run(knee_detect_command(tmp_path / "serial", *films))
    assert serial.returncode == 0, serial.stderr
    on_cluster = _run(knee_detect_command(tmp_path / "cluster", "--scheduler", address, *films))
    assert on_cluster.returncode == 0, on_cluster.stderr
    expected, got = _points(tmp_path / "serial"), _points(tmp_path / "cluster")
    assert sorted(got) == ["151.mrk.json", "152.mrk.json"] == sorted(expected)
    for name, points in expected.items():
        np.testing.assert_allclose(got[name], points, atol=1e-3)  # mm
    workers = {r["worker"] for r in iter_records(tmp_path / "cluster")}
    assert workers <= set(client.scheduler_info()["workers"]) and len(workers) >= 1


#: The reduced training of Testing/slicer_modules/test_oneshot_logic.py (TINY): finds the skull in seconds.
TINY_TRAINING = ["--width", "16", "--max-epochs", "2", "--volumes-per-epoch", "1", "--patience", "1"]
REFERENCE, VALIDATION, TARGET = "C57BL6_J_", "BALB_CBYJ_", "C3H_HEJ_"
#: The second input: the target with its header moved by this much (mm), so that the two outputs differ.
SHIFT_MM = 5.0


@pytest.fixture(scope="module")
def oneshot_batch(data_root, tmp_path_factory):
    """(model file, input folder): a one-shot model trained by the CLI with TINY settings on one mouse
    skull, and two targets named alike (``a/skull``, ``b/skull``): a real skull and its shifted copy."""
    import SimpleITK as sitk
    from LandmarkCoreLib.datasets import mouse_skull_subjects

    subjects = {s.name: s for s in mouse_skull_subjects(data_root)}
    reference, validation = subjects[REFERENCE], subjects[VALIDATION]
    root = tmp_path_factory.mktemp("oneshot")
    train = [BIN / "oneshot-landmarks", "train", "--reference", reference.image]
    train += ["--reference-landmarks", reference.landmarks, "--reference-soi", reference.bone_mask]
    train += ["--validation", validation.image, "--validation-soi", validation.bone_mask]
    train += ["--working-spacing-mm", "1.0", "--device", "cpu", *TINY_TRAINING]
    trained = _run([*train, "--progress-format", "jsonl", "-o", root / "model.pt"])
    assert trained.returncode == 0, trained.stderr
    image = sitk.ReadImage(str(subjects[TARGET].image))
    for folder, shift in (("a", 0.0), ("b", SHIFT_MM)):
        (root / "in" / folder).mkdir(parents=True)
        image.SetOrigin([image.GetOrigin()[0] + shift, *image.GetOrigin()[1:]])
        sitk.WriteImage(image, str(root / "in" / folder / "skull.nii.gz"))
    return root / "model.pt", root / "in"


@pytest.mark.realdata
def test_oneshot_batch_on_two_workers_equals_the_in_process_run(scheduler, oneshot_batch, tmp_path):
    address, client = scheduler
    model, inputs = oneshot_batch
    detect = [BIN / "oneshot-landmarks", "detect", "-m", model, "--threads", "1"]
    detect += ["--progress-format", "jsonl"]
    serial = _run([*detect, "-o", tmp_path / "serial", inputs])
    assert serial.returncode == 0, serial.stderr
    on_cluster = _run([*detect, "-o", tmp_path / "cluster", "--scheduler", address, inputs])
    assert on_cluster.returncode == 0, on_cluster.stderr
    expected, got = _points(tmp_path / "serial"), _points(tmp_path / "cluster")
    assert sorted(got) == ["a_skull.mrk.json", "b_skull.mrk.json"] == sorted(expected)
    moved = expected["b_skull.mrk.json"] - expected["a_skull.mrk.json"]
    assert np.abs(moved.mean(0) - [SHIFT_MM, 0, 0]).max() < 0.5  # two inputs told apart, not one twice
    for name, points in expected.items():
        assert np.linalg.norm(got[name] - points, axis=1).max() <= 1e-3  # mm
    records = list(iter_records(tmp_path / "cluster"))
    assert [r["status"] for r in records] == ["done", "done"]
    assert {r["worker"] for r in records} <= set(client.scheduler_info()["workers"])  # who did what
    table = (tmp_path / "cluster" / "batch_summary.md").read_text()
    assert all(f"| {r['worker']} |" in table for r in records)


@pytest.mark.realdata
def test_a_worker_killed_mid_batch_loses_no_output(scheduler, data_root, tmp_path, knee_detect_command):
    address, client = scheduler
    films = [str(data_root / "isbi2015_ceph" / "images" / name) for name in FILMS]
    out = tmp_path / "out"
    command = knee_detect_command(out, "--scheduler", address, *films)
    batch = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, encoding="utf-8", errors="replace"
    )
    first = batch.stdout.readline()  # the first input finished: the batch is under way
    assert '"progress"' in first, batch.stderr.read()
    victim, pid = next(iter(client.run(os.getpid).items()))
    os.kill(pid, signal.SIGKILL)
    _, stderr = batch.communicate(timeout=300)
    assert batch.returncode == 0, stderr
    assert sorted(_points(out)) == sorted(f"{Path(f).stem}.mrk.json" for f in films)
    records = list(iter_records(out))
    assert [r["status"] for r in records] == ["done"] * len(films)
    assert all(r["worker"].startswith("tcp://127.0.0.1:") for r in records)  # who did what
    assert victim not in {r["worker"] for r in records[1:]} or len(records) == 1


class KillsItsWorker:
    """A detector whose input 'poison' ends the worker process, as a crashing native library would."""

    def output_names(self, stem: str) -> list[str]:
        return [f"{stem}.txt"]

    def __call__(self, source: Path, stem: str, output: Path) -> dict:
        if source.read_text() == "poison":
            os._exit(1)
        (output / f"{stem}.txt").write_text("ok")
        return {}


def test_an_input_that_kills_workers_again_and_again_is_failed_not_retried_forever(tmp_path):
    from LandmarkCoreLib.dask_executor import ALLOWED_FAILURES, DaskExecutor

    for name, text in {"a.png": "fine", "b.png": "poison", "c.png": "fine"}.items():
        (tmp_path / "in" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "in" / name).write_text(text)
    items, _ = plan_batch([tmp_path / "in"], (".png",))
    started = time.monotonic()
    code = run_batch(
        KillsItsWorker(), items, tmp_path / "out", executor=DaskExecutor(workers=2), report=print
    )
    assert code == 1 and time.monotonic() - started < 240
    records = {Path(r["input"]).name: r for r in iter_records(tmp_path / "out")}
    assert records["a.png"]["status"] == records["c.png"]["status"] == "done"
    assert records["b.png"]["status"] == "failed"
    assert f"killed {ALLOWED_FAILURES + 1} workers in a row" in records["b.png"]["reason"]
