"""What a user would try, against the installed commands, each with its expected verdict (issue: one batch
contract, no silent wrong answer). A verdict is the exit code plus, per input, done/failed and the reason."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from installed_commands import one_clear_line, run
from LandmarkCoreLib.batch import LOG_NAME, SUMMARY_NAME, iter_records
from LandmarkCoreLib.landmarks import LandmarkSet, write_landmarks

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def film(data_root) -> Path:
    return data_root / "isbi2015_ceph" / "images" / "151.jpg"


@pytest.fixture(scope="module")
def knee_batch(film, tmp_path_factory):
    """One knee batch over every bad radiograph case, beside good films; run once, judged per case."""
    root = tmp_path_factory.mktemp("knee")
    cases = root / "in"
    (cases / "a").mkdir(parents=True)
    (cases / "b").mkdir()
    shutil.copy(film, cases / "a" / "151.jpg")  # same stem in two folders: two outputs
    shutil.copy(film, cases / "b" / "151.jpg")
    data = film.read_bytes()
    (cases / "truncated.jpg").write_bytes(data[: len(data) // 2])
    sitk.WriteImage(sitk.Image(800, 600, sitk.sitkUInt8), str(cases / "blank.png"))
    noise = np.random.default_rng(0).integers(0, 255, (600, 800)).astype(np.uint8)
    sitk.WriteImage(sitk.GetImageFromArray(noise), str(cases / "noise.png"))
    (cases / "not_an_image.png").write_text("hello")
    grey = sitk.ReadImage(str(film))
    sitk.WriteImage(sitk.Flip(grey, (True, False)), str(cases / "mirrored.png"))
    wrong_size = sitk.ReadImage(str(film.with_name("152.jpg")))  # passes the shape model at 0.2 mm
    wrong_size.SetSpacing((0.2, 0.2))
    sitk.WriteImage(wrong_size, str(cases / "double_pixel_size.nrrd"))
    out = root / "out"
    out.mkdir()
    (out / "blank.mrk.json").write_text("a result of an earlier run")
    result = run("knee-landmarks", "detect", "--threads", "1", "-o", out, cases, root / "missing.jpg")
    return result, {Path(r["input"]).relative_to(root).as_posix(): r for r in iter_records(out)}, out


@pytest.mark.parametrize(
    ("case", "status", "reason"),
    [
        ("in/a/151.jpg", "done", ""),
        ("in/b/151.jpg", "done", ""),
        ("in/mirrored.png", "done", ""),  # a left-facing film is detected mirrored and mapped back
        ("in/truncated.jpg", "failed", "JPEG file is truncated"),
        ("in/blank.png", "failed", "is blank"),
        ("in/noise.png", "failed", "looks like noise"),
        ("in/double_pixel_size.nrrd", "failed", "pixel size (0.2 mm) looks wrong: read at 0.1 mm"),
        ("in/not_an_image.png", "failed", "not a readable image"),
        ("missing.jpg", "failed", "file does not exist"),
    ],
)
def test_knee_batch_verdict_per_input(knee_batch, case, status, reason):
    _, records, _ = knee_batch
    record = records[case]
    assert record["status"] == status, record
    assert reason in record.get("reason", ""), record


def test_knee_batch_exit_code_outputs_and_summary(knee_batch):
    result, records, out = knee_batch
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert sorted(p.name for p in out.glob("*.mrk.json")) == [
        "a_151.mrk.json",
        "b_151.mrk.json",
        "mirrored.mrk.json",
    ]
    assert not (out / "blank.mrk.json").exists()  # no stale result beside the new failure
    assert (out / "a_151.mrk.json").read_bytes() == (out / "b_151.mrk.json").read_bytes()
    assert (out / "a_151.mrk.json").stat().st_mode & 0o044 == 0o044  # readable by others
    assert (out / SUMMARY_NAME).read_text().endswith("9 inputs: 3 done, 6 failed\n")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--spacing", "0"], ["--spacing", "0"]),
        (["--spacing", "nan"], ["--spacing", "nan"]),
        (["--spacing", "inf"], ["--spacing", "inf"]),
        (["--spacing", "-0.1"], ["--spacing", "-0.1"]),
        (["--pixel-size", "1e12"], ["--pixel-size"]),
        (["--threads", "0"], ["--threads"]),
        (["-m", "no_such_model.pt"], ["no_such_model.pt"]),
    ],
)
def test_knee_usage_errors_are_one_line_before_work(film, tmp_path, args, words):
    one_clear_line(run("knee-landmarks", "detect", "-o", tmp_path / "out", *args, film), *words)
    assert not (tmp_path / "out" / LOG_NAME).exists()


def test_unwritable_output_and_corrupt_model_are_refused_before_work(film, tmp_path):
    (tmp_path / "file").write_text("")
    one_clear_line(
        run("knee-landmarks", "detect", "-o", tmp_path / "file" / "out", film), "output folder", "file"
    )
    from KneeLandmarksLib.pipeline import default_model_path

    data = default_model_path().read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 3])
    one_clear_line(
        run("knee-landmarks", "detect", "-m", tmp_path / "cut.pt", "-o", tmp_path / "o", film), "cut.pt"
    )


@pytest.mark.parametrize(
    ("command", "args", "words"),
    [
        ("knee-landmarks", ["train", "--data", "isbi:train", "--stage", "1", "--epochs", "0"], ["--epochs"]),
        ("knee-landmarks", ["train", "--data", "isbi:train", "--stage", "1", "--lr", "nan"], ["--lr"]),
        ("face-landmarks", ["train", "--steps", "0"], ["--steps"]),
        ("face-landmarks", ["train-source", "--learning-rate", "inf"], ["--learning-rate"]),
        ("face-landmarks", ["detect", "--box", "nan", "0", "10", "10", "x.png"], ["--box"]),
        ("oneshot-landmarks", ["detect", "-m", "missing.pt", "x.nii.gz"], ["missing.pt"]),
    ],
)
def test_training_and_detection_arguments_are_checked_before_work(tmp_path, command, args, words):
    one_clear_line(run(command, *args, "-o", tmp_path / "out"), *words)


def test_oneshot_train_spacing_out_of_range_is_refused_before_work(tmp_path):
    names = ["--reference", "--reference-landmarks", "--reference-soi", "--validation", "--validation-soi"]
    files = [arg for name in names for arg in (name, tmp_path / "absent.nii.gz")]
    for spacing in ("0.01", "100", "nan"):
        result = run(
            "oneshot-landmarks", "train", *files, "-o", tmp_path / "m.pt", "--working-spacing-mm", spacing
        )
        one_clear_line(result, "--working-spacing-mm")


def test_face_batch_verdicts(data_root, tmp_path):
    from LandmarkCoreLib.datasets import youtube_faces_samples

    photo = youtube_faces_samples("test", data_root)[0].image
    shutil.copy(photo, tmp_path / "face.jpg")
    sitk.WriteImage(sitk.Image(120, 100, sitk.sitkUInt8), str(tmp_path / "blank.png"))
    result = run(
        "face-landmarks",
        "detect",
        "--threads",
        "1",
        "-o",
        tmp_path / "out",
        tmp_path / "face.jpg",
        tmp_path / "blank.png",
    )
    assert result.returncode == 1, result.stderr
    records = {Path(r["input"]).name: r for r in iter_records(tmp_path / "out")}
    assert records["face.jpg"]["status"] == "done"
    assert records["blank.png"]["status"] == "failed" and "no face found" in records["blank.png"]["reason"]
    off = run(
        "face-landmarks",
        "detect",
        "--box",
        "5000",
        "5000",
        "5100",
        "5100",
        "-o",
        tmp_path / "off",
        tmp_path / "face.jpg",
    )
    assert off.returncode == 1
    (record,) = iter_records(tmp_path / "off")
    assert record["status"] == "failed" and "face box" in record["reason"]


def test_evaluate_verdicts(tmp_path):
    points = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    for folder in ("truth", "pred"):
        write_landmarks(tmp_path / folder / "A.mrk.json", LandmarkSet(["p", "q"], points))
        write_landmarks(tmp_path / folder / "B.mrk.json", LandmarkSet(["p", "q"], points))
    write_landmarks(tmp_path / "pred" / "A.fcsv", LandmarkSet(["p", "q"], points + 1))
    evaluate = ["evaluate", "--predictions", tmp_path / "pred", "--truth", tmp_path / "truth"]
    one_clear_line(run("knee-landmarks", *evaluate), "A.fcsv", "A.mrk.json")
    (tmp_path / "pred" / "A.fcsv").unlink()
    (tmp_path / "pred" / "B.mrk.json").write_text("{")
    result = run("knee-landmarks", *evaluate)
    assert result.returncode == 1 and "case 'B' failed" in result.stderr and "Traceback" not in result.stderr


def test_ctrl_c_writes_the_log_and_exits_130(film, tmp_path, knee_detect_command):
    for i in range(6):
        shutil.copy(film, tmp_path / f"film{i}.jpg")
    command = knee_detect_command(tmp_path / "out", *sorted(tmp_path.glob("film*.jpg")))
    batch = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, encoding="utf-8", errors="replace"
    )
    assert '"progress"' in batch.stdout.readline()  # one film is done
    os.kill(batch.pid, signal.SIGINT)
    _, stderr = batch.communicate(timeout=120)
    assert batch.returncode == 130, stderr
    statuses = [r["status"] for r in iter_records(tmp_path / "out")]
    assert len(statuses) == 6 and statuses[0] == "done" and "cancelled" in statuses
    assert "cancelled" in (tmp_path / "out" / SUMMARY_NAME).read_text()
