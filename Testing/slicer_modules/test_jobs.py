"""The Qt-free child-process runner the Slicer Widgets use for training and batch detection."""

from __future__ import annotations

import sys
import textwrap
import time

import pytest
from LandmarkCoreLib.errors import Cancelled
from LandmarkCoreLib.jobs import Job, JobError, _parse_progress, cli_command, package_python_path

FAKE_CLI = textwrap.dedent(
    """
    import json, signal, sys, time
    from pathlib import Path

    mode, workdir = sys.argv[1], Path(sys.argv[2])

    def progress(fraction, message):
        print(json.dumps({"progress": fraction, "message": message}), flush=True)

    if mode == "ok":
        print("plain log line", flush=True)
        for epoch in range(1, 4):
            progress(epoch / 3, f"epoch {epoch}/3 val loss 0.{epoch}")
        (workdir / "result.txt").write_text("done")
    elif mode == "fail":
        progress(0.1, "reading")
        print("Traceback (most recent call last): ...", file=sys.stderr)
        print("error: reference landmarks 'ref.mrk.json': no control points", file=sys.stderr)
        sys.exit(2)
    elif mode == "train":
        signal.signal(signal.SIGINT, signal.default_int_handler)  # as run_command does
        epoch = 0
        try:
            while True:
                epoch += 1
                (workdir / "checkpoint.txt").write_text(str(epoch))
                progress(None, f"epoch {epoch}")
                time.sleep(0.05)
        except KeyboardInterrupt:
            print("cancelled; checkpoint kept", file=sys.stderr)
            sys.exit(130)
    elif mode == "stubborn":
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        progress(0.0, "ignoring interrupts")
        time.sleep(60)
    """
)


@pytest.fixture
def fake_cli(tmp_path):
    script = tmp_path / "fake_cli.py"
    script.write_text(FAKE_CLI)
    return lambda mode: [sys.executable, str(script), mode, str(tmp_path)]


def wait_until(predicate, seconds=30.0):
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.02)


def test_progress_lines_are_parsed_and_others_kept_as_log(fake_cli, tmp_path):
    job = Job(fake_cli("ok"), name="fake train").start()
    result = job.wait(timeout=60)
    events = job.poll()
    assert [round(e.fraction, 3) for e in events] == [0.333, 0.667, 1.0]
    assert events[-1].message == "epoch 3/3 val loss 0.3"
    assert result.returncode == 0 and result.log == ["plain log line"]
    assert (tmp_path / "result.txt").read_text() == "done"
    assert job.poll() == []  # drained


def test_failure_raises_with_the_tools_error_line(fake_cli):
    job = Job(fake_cli("fail"), name="fake detect").start()
    with pytest.raises(JobError) as info:
        job.wait(timeout=60)
    assert info.value.returncode == 2
    assert "fake detect failed" in str(info.value)
    assert "'ref.mrk.json': no control points" in str(info.value)


def test_an_accepted_non_zero_status_is_a_result(fake_cli):
    job = Job(fake_cli("fail"), success_codes=(0, 2)).start()
    result = job.wait(timeout=60)
    assert result.returncode == 2 and "no control points" in result.stderr


def test_cancel_interrupts_and_keeps_the_checkpoint(fake_cli, tmp_path):
    job = Job(fake_cli("train"), name="fake train").start()
    checkpoint = tmp_path / "checkpoint.txt"
    wait_until(lambda: checkpoint.exists() and int(checkpoint.read_text() or 0) >= 2)
    job.cancel(grace_seconds=20)
    wait_until(lambda: job.finished)
    with pytest.raises(Cancelled):
        job.result()
    assert int(checkpoint.read_text()) >= 2
    assert "checkpoint kept" in "\n".join(job._stderr)  # it stopped through its own handler


def test_cancel_terminates_a_child_that_ignores_the_interrupt(fake_cli):
    job = Job(fake_cli("stubborn")).start()
    wait_until(lambda: bool(job._events.qsize()))
    job.cancel(grace_seconds=0.5)
    wait_until(lambda: job.finished, seconds=20)
    with pytest.raises(Cancelled):
        job.result()


def test_result_before_the_end_is_refused(fake_cli):
    job = Job(fake_cli("train")).start()
    try:
        with pytest.raises(RuntimeError, match="not finished"):
            job.result()
    finally:
        job.cancel(grace_seconds=5)
        wait_until(lambda: job.finished)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"progress": 0.5, "message": "half"}', (0.5, "half")),
        ('{"progress": null, "message": "epoch 3"}', (None, "epoch 3")),
        ('{"progress": 1.7, "message": "clamped"}', (1.0, "clamped")),
        ("epoch 3 loss 0.2", None),
        ('{"unrelated": 1}', None),
        ("{not json", None),
    ],
)
def test_parse_progress(line, expected):
    event = _parse_progress(line)
    assert (None if event is None else (event.fraction, event.message)) == expected


def test_cli_command_and_python_path():
    import LandmarkCoreLib

    command = cli_command("OneShotLandmarksLib.cli", "train", ["--seed", 3], python="/py")
    assert command == [
        "/py",
        "-m",
        "OneShotLandmarksLib.cli",
        "train",
        "--progress-format",
        "jsonl",
        "--seed",
        "3",
    ]
    (folder,) = package_python_path(LandmarkCoreLib, LandmarkCoreLib)
    assert folder.endswith("LandmarkCore")
