"""One-shot detection through the installed ``oneshot-landmarks`` commands on targets that lie: a slice
thickness read 3x, a header mirrored by mistake, a truncated .nii.gz, NaN voxels, a legitimate left-handed
voxel grid, near-symmetric anatomy whose handedness the image content cannot confirm, and a target whose
pose the model gets wrong. One batch over all of them, each with its verdict in the batch log.

The model: one short training (``oneshot-landmarks train``) on the MNI152 T1 template resampled to 2 mm
with its 32 AFIDs; the targets are posed, warped copies (``posing.posed_copy``) with known landmarks."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from installed_commands import run
from LandmarkCoreLib.batch import SUMMARY_NAME, iter_records
from LandmarkCoreLib.images import write_image
from LandmarkCoreLib.landmarks import LandmarkSet, read_landmarks, write_landmarks
from OneShotLandmarksLib.posing import PoseRecipe, posed_copy
from OneShotLandmarksLib.soi import threshold_soi

pytestmark = pytest.mark.realdata

SPACING_MM = 2.0  # the template resampled: a training and six detections in about a minute on 2 cores
TINY = ["--width", "8", "--max-epochs", "2", "--volumes-per-epoch", "1"]
#: the left-handed copy, detected by the tiny model: measured 0.93 mm mean, 1.52 mm worst (2 mm voxels)
LEFT_HANDED_BOUND_MM = 3.0
HUMAN = "human_brain_mri_afids"
TEMPLATE, AFIDS = "tpl-MNI152NLin2009cAsym_res-01_T1w.nii.gz", "tpl-MNI152NLin2009cAsym_afids.fcsv"


def _resampled(image: sitk.Image, spacing: float) -> sitk.Image:
    extent = np.array(image.GetSize()) * np.array(image.GetSpacing())
    grid = sitk.Image([int(e / spacing) for e in extent], sitk.sitkFloat32)
    grid.SetSpacing([spacing] * 3)
    grid.SetOrigin(image.GetOrigin())
    grid.SetDirection(image.GetDirection())
    return sitk.Resample(image, grid, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)


def _symmetrised(image: sitk.Image) -> sitk.Image:
    """The average of the template and its mirror image across x = 0 (MNI's mid-sagittal plane): an
    anatomy whose left and right halves are the same, so the image content cannot tell its handedness."""
    mirror = sitk.AffineTransform([-1.0, 0, 0, 0, 1, 0, 0, 0, 1], [0.0, 0, 0])
    values = sitk.GetArrayFromImage(image) + sitk.GetArrayFromImage(sitk.Resample(image, image, mirror))
    symmetric = sitk.GetImageFromArray(values / 2)
    symmetric.CopyInformation(image)
    return symmetric


def _header_mirrored(image: sitk.Image) -> sitk.Image:
    """Voxels flipped along i, header kept: the anatomy flips left-right in world space."""
    flipped = sitk.Flip(image, [True, False, False])
    flipped.CopyInformation(image)
    return flipped


def _z_spacing_tripled(image: sitk.Image) -> sitk.Image:
    wrong = sitk.Image(image)
    wrong.SetSpacing([*image.GetSpacing()[:2], 3 * image.GetSpacing()[2]])
    return wrong


def _write_targets(reference: sitk.Image, landmarks: LandmarkSet, folder: Path) -> LandmarkSet:
    """Every target case in ``folder``; returns the true landmarks of the left-handed copy."""
    recipe = PoseRecipe(spacing_mm=(SPACING_MM,) * 3)
    left_handed, truth, _ = posed_copy(reference, landmarks, 2, replace(recipe, left_handed_grid=True))
    posed, _, _ = posed_copy(reference, landmarks, 1, recipe)
    symmetric, _, _ = posed_copy(_symmetrised(reference), landmarks, 1, recipe)
    write_image(folder / "left_handed.nii.gz", left_handed)
    write_image(folder / "z_spacing_3x.nii.gz", _z_spacing_tripled(posed))
    write_image(folder / "header_mirrored.nii.gz", _header_mirrored(posed))
    write_image(folder / "symmetric.nii.gz", symmetric)
    write_image(folder / "symmetric_header_mirrored.nii.gz", _header_mirrored(symmetric))
    wrong_pose, _, _ = posed_copy(_symmetrised(reference), landmarks, 3, recipe)
    write_image(folder / "wrong_pose.nii.gz", wrong_pose)  # the tiny model: 46 mm off, correlation 0.15
    data = (folder / "left_handed.nii.gz").read_bytes()
    (folder / "truncated.nii.gz").write_bytes(data[: len(data) // 2])
    with_nan = sitk.GetArrayFromImage(posed)
    with_nan[with_nan.shape[0] // 2, 10:20, 10:20] = np.nan
    nan_image = sitk.GetImageFromArray(with_nan)
    nan_image.CopyInformation(posed)
    write_image(folder / "nan_voxels.nii.gz", nan_image)
    return truth


def _train(reference: sitk.Image, landmarks: LandmarkSet, folder: Path) -> Path:
    validation, _, _ = posed_copy(reference, landmarks, 100, PoseRecipe(spacing_mm=(SPACING_MM,) * 3))
    files = {}
    for name, image in (("reference", reference), ("validation", validation)):
        files[name], files[f"{name}_soi"] = folder / f"{name}.nii.gz", folder / f"{name}_soi.nii.gz"
        write_image(files[name], image)
        write_image(files[f"{name}_soi"], threshold_soi(image, what=name))
    write_landmarks(folder / "reference.mrk.json", landmarks)
    arguments = [f"--{key.replace('_', '-')}" for key in files]
    inputs = [value for pair in zip(arguments, files.values(), strict=True) for value in pair]
    model = folder / "model.pt"
    result = run(
        "oneshot-landmarks",
        "train",
        *inputs,
        "--reference-landmarks",
        folder / "reference.mrk.json",
        "-o",
        model,
        *TINY,
    )
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    return model


@pytest.fixture(scope="module")
def oneshot_batch(data_root, tmp_path_factory):
    """One tiny model, one ``oneshot-landmarks detect`` over every case (and a missing file)."""
    root = tmp_path_factory.mktemp("oneshot")
    template = sitk.ReadImage(str(data_root / HUMAN / TEMPLATE), sitk.sitkFloat32)
    reference = _resampled(template, SPACING_MM)
    landmarks = read_landmarks(data_root / HUMAN / AFIDS)
    model = _train(reference, landmarks, root)
    (root / "in").mkdir()
    truth = _write_targets(reference, landmarks, root / "in")
    out = root / "out"
    result = run(
        "oneshot-landmarks",
        "detect",
        "--threads",
        "1",
        "-m",
        model,
        "-o",
        out,
        root / "in",
        root / "missing.nii.gz",
    )
    records = {Path(r["input"]).name: r for r in iter_records(out)}
    return result, records, out, truth


@pytest.mark.parametrize(
    ("case", "status", "reason"),
    [
        ("left_handed.nii.gz", "done", ""),
        ("z_spacing_3x.nii.gz", "failed", "check the voxel spacing (slice thickness)"),
        ("header_mirrored.nii.gz", "failed", "its anatomy is mirrored left-right relative to the reference"),
        ("truncated.nii.gz", "failed", "compressed file is truncated or corrupt"),
        ("nan_voxels.nii.gz", "failed", "NaN or infinite voxel values"),
        ("symmetric.nii.gz", "done", ""),
        ("symmetric_header_mirrored.nii.gz", "done", ""),
        ("wrong_pose.nii.gz", "failed", "the registration did not find the structure"),
        ("missing.nii.gz", "failed", "file does not exist"),
    ],
)
def test_oneshot_verdict_per_target(oneshot_batch, case, status, reason):
    _, records, _, _ = oneshot_batch
    record = records[case]
    assert record["status"] == status, record
    assert reason in record.get("reason", ""), record


def test_left_handed_grid_gives_the_right_landmarks_without_a_warning(oneshot_batch):
    _, records, out, truth = oneshot_batch
    found = read_landmarks(out / "left_handed.mrk.json")
    assert found.labels == truth.labels
    errors = np.linalg.norm(found.points - truth.points, axis=1)
    assert errors.max() < LEFT_HANDED_BOUND_MM, errors
    handedness = records["left_handed.nii.gz"]["rotation_scores"]["handedness"]
    assert handedness["as_read"] > handedness["mirrored"]
    assert records["left_handed.nii.gz"]["warnings"] == []


@pytest.mark.parametrize("case", ["symmetric.nii.gz", "symmetric_header_mirrored.nii.gz"])
def test_unconfirmed_handedness_is_written_with_a_warning(oneshot_batch, case):
    """Near-symmetric anatomy: the result is written, its log record and the summary say that the
    handedness could not be confirmed (a mirrored header would swap left and right unseen)."""
    _, records, out, _ = oneshot_batch
    (warning,) = records[case]["warnings"]
    assert "handedness could not be confirmed from the image content" in warning
    assert "check the header's orientation" in warning
    assert (out / case.replace(".nii.gz", ".mrk.json")).exists()
    row = next(line for line in (out / SUMMARY_NAME).read_text().splitlines() if case in line)
    assert "handedness could not be confirmed" in row


def test_oneshot_batch_exit_code_and_outputs(oneshot_batch):
    result, records, out, _ = oneshot_batch
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert len(records) == 9
    written = sorted(p.name for p in out.glob("*.mrk.json"))
    assert written == ["left_handed.mrk.json", "symmetric.mrk.json", "symmetric_header_mirrored.mrk.json"]
    assert (out / SUMMARY_NAME).read_text().endswith("9 inputs: 3 done, 6 failed\n")
