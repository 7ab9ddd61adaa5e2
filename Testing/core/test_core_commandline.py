"""The shared ending of the console commands: user errors and interrupts become exit codes."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import SimpleITK as sitk
from LandmarkCoreLib.atomic import write_text_atomic
from LandmarkCoreLib.batch import (
    EXIT_SOME_FAILED,
    LOG_NAME,
    SUMMARY_NAME,
    iter_records,
    plan_batch,
    require_writable_folder,
    run_batch,
)
from LandmarkCoreLib.commandline import (
    EXIT_INTERRUPTED,
    EXIT_USER_ERROR,
    positive_float,
    positive_int,
    run_command,
)
from LandmarkCoreLib.errors import InputError


def test_success_codes_and_reports():
    assert run_command("tool", lambda: None) == 0
    assert run_command("tool", lambda: 3) == 3
    assert run_command("tool", lambda: {"report": 1}) == 0  # e.g. evaluate returns its summary


def test_user_error_is_one_line_naming_the_input(capsys):
    def fail():
        raise InputError("target 'x.nrrd'", "no structure of interest found")

    assert run_command("tool", fail) == EXIT_USER_ERROR
    assert capsys.readouterr().err == "tool: error: target 'x.nrrd': no structure of interest found\n"


def test_interrupt_keeps_saved_work_and_says_so(capsys):
    def interrupted():
        raise KeyboardInterrupt

    assert run_command("tool", interrupted) == EXIT_INTERRUPTED
    assert "last checkpoint" in capsys.readouterr().err


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signal dispositions")
def test_interrupt_reaches_a_command_started_with_sigint_ignored():
    """Like a CLI launched from a background shell job: SIGINT arrives ignored, Cancel must still work."""
    child = textwrap.dedent(
        """
        import sys, time
        from LandmarkCoreLib.commandline import run_command

        def work():
            print("started", flush=True)
            time.sleep(60)

        sys.exit(run_command("tool", work))
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", child],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        encoding="utf-8",
        errors="replace",
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    assert process.stdout.readline().strip() == "started"
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == EXIT_INTERRUPTED, stderr
    assert "interrupted" in stderr


# --------------------------------------------------------------------------- the batch runner
class ToyDetector:
    """Writes ``stem.mrk.json`` holding the input's text; 'bad' inputs raise InputError, 'boom' a bug."""

    def __init__(self, interrupt_at: str | None = None):
        self.interrupt_at = interrupt_at

    def output_names(self, stem: str) -> list[str]:
        return [f"{stem}.mrk.json"]

    def __call__(self, source: Path, stem: str, output: Path) -> dict:
        text = source.read_text()
        if text == self.interrupt_at:
            raise KeyboardInterrupt
        if text == "bad":
            raise InputError(f"image '{source}'", "is not a radiograph")
        if text == "boom":
            raise ZeroDivisionError("division by zero")
        write_text_atomic(output / f"{stem}.mrk.json", text)
        return {"length": len(text)}


def _files(root: Path, contents: dict[str, str]) -> None:
    for name, text in contents.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_inputs_from_folders_globs_and_files_get_distinct_predictable_names(tmp_path):
    _files(
        tmp_path,
        {
            "a/skull.nii.gz": "1",
            "b/skull.nii.gz": "2",
            "b/deeper/pat.visit1.jpg": "3",
            "b/deeper/pat.visit2.jpg": "4",
            "c/skull.nrrd": "5",
            "c/skull.nii.gz": "6",
            "b/notes.txt": "not an image",
        },
    )
    items, unusable = plan_batch(
        [tmp_path / "a", tmp_path / "b", str(tmp_path / "c" / "*.n*"), tmp_path / "a" / "skull.nii.gz"],
        (".nii.gz", ".nrrd", ".jpg"),
    )
    names = {item.source.relative_to(tmp_path).as_posix(): item.stem for item in items}
    assert names == {
        "a/skull.nii.gz": "a_skull",
        "b/skull.nii.gz": "b_skull",
        "b/deeper/pat.visit1.jpg": "pat.visit1",
        "b/deeper/pat.visit2.jpg": "pat.visit2",
        "c/skull.nii.gz": "c_skull.nii.gz",
        "c/skull.nrrd": "c_skull.nrrd",
    }
    assert unusable == {}
    _, unusable = plan_batch([tmp_path / "gone.png", str(tmp_path / "*.bmp")], (".png",))
    assert unusable == {
        str(tmp_path / "gone.png"): "file does not exist",
        str(tmp_path / "*.bmp"): "pattern matches no file",
    }


def test_a_dicom_series_folder_is_one_input(tmp_path):
    volume = sitk.Image(6, 5, 3, sitk.sitkInt16)
    (tmp_path / "series").mkdir()
    for z in range(3):
        slice_ = volume[:, :, z]
        slice_.SetMetaData("0020|000e", "1.2.3")
        slice_.SetMetaData("0020|0032", f"0\\0\\{2 * z}")
        sitk.WriteImage(slice_, str(tmp_path / "series" / f"{z}.dcm"))
    items, _ = plan_batch([tmp_path], (".nii.gz",))
    assert [(item.source, item.stem) for item in items] == [(tmp_path / "series", "series")]


def test_one_bad_input_never_stops_the_batch_and_leaves_no_stale_result(tmp_path, capsys):
    _files(tmp_path / "in", {"a.png": "good", "b.png": "bad", "c.png": "boom", "d.png": "fine"})
    out = tmp_path / "out"
    _files(out, {"b.mrk.json": "stale result of an earlier run"})
    items, unusable = plan_batch([tmp_path / "in", tmp_path / "missing.png"], (".png",))
    assert run_batch(ToyDetector(), items, out, unusable) == EXIT_SOME_FAILED
    records = {Path(r["input"]).name: r for r in iter_records(out)}
    assert {name: r["status"] for name, r in records.items()} == {
        "missing.png": "failed",
        "a.png": "done",
        "b.png": "failed",
        "c.png": "failed",
        "d.png": "done",
    }
    assert records["b.png"]["reason"] == f"image '{tmp_path / 'in' / 'b.png'}': is not a radiograph"
    assert records["c.png"]["reason"] == "unexpected error ZeroDivisionError: division by zero"
    assert records["a.png"]["length"] == 4 and records["a.png"]["worker"].startswith("in-process")
    assert sorted(p.name for p in out.glob("*.mrk.json")) == ["a.mrk.json", "d.mrk.json"]
    assert (out / "a.mrk.json").stat().st_mode & 0o777 == 0o666 & ~_umask()
    summary = (out / SUMMARY_NAME).read_text()
    assert summary.endswith("5 inputs: 2 done, 3 failed\n")
    assert summary in capsys.readouterr().err.replace(f"\nlog: {out / LOG_NAME}", "") + "\n"


def test_ctrl_c_records_what_was_done_and_cancels_the_rest(tmp_path):
    _files(tmp_path / "in", {"a.png": "good", "b.png": "stop here", "c.png": "fine"})
    items, _ = plan_batch([tmp_path / "in"], (".png",))
    code = run_batch(ToyDetector(interrupt_at="stop here"), items, tmp_path / "out", report=lambda _: None)
    assert code == 130
    assert [r["status"] for r in iter_records(tmp_path / "out")] == ["done", "cancelled", "cancelled"]
    assert (tmp_path / "out" / SUMMARY_NAME).read_text().endswith("3 inputs: 1 done, 2 cancelled\n")


def test_unwritable_output_is_refused_before_work(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(InputError, match=r"output folder '.*file/out': cannot be written"):
        require_writable_folder(tmp_path / "file" / "out")


def test_numeric_flags_refuse_zero_negative_nan_inf_and_absurd_values(capsys):
    parser = argparse.ArgumentParser(prog="tool")
    parser.add_argument("--spacing", type=positive_float)
    parser.add_argument("--threads", type=positive_int)
    for flag, value in [("--spacing", v) for v in ("0", "-1", "nan", "inf", "1e9", "x")] + [
        ("--threads", v) for v in ("0", "-2", "1.5", "10000000")
    ]:
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args([flag, value])
        assert exit_info.value.code == EXIT_USER_ERROR
        assert f"argument {flag}: " in capsys.readouterr().err.splitlines()[-1]
    assert parser.parse_args(["--spacing", "0.1", "--threads", "2"]).spacing == 0.1


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
