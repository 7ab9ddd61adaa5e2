"""FaceLandmarks without a box: the identity-disjoint split, the localiser's box mapping, refused boxes,
and on real frames: every face of a two-face photograph gets its own points, a non-face gets none."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from FaceLandmarksLib import cli
from FaceLandmarksLib.data import box_from_points, protocol_samples, split_identities
from FaceLandmarksLib.localiser import BoxCalibration, face_boxes, fit_calibration
from FaceLandmarksLib.pipeline import FaceModel, detect_faces, detect_landmarks
from FaceLandmarksLib.scoring import normalised_errors
from LandmarkCoreLib.batch import iter_records
from LandmarkCoreLib.datasets import FaceSample
from LandmarkCoreLib.errors import InputError
from LandmarkCoreLib.images import physical_to_index, read_image
from LandmarkCoreLib.landmarks import read_landmarks


class _ZeroNet(torch.nn.Module):
    stride, cell_centre = 4, 1.5

    def heatmaps(self, x):
        return torch.zeros(x.shape[0], 68, x.shape[-1] // 4, x.shape[-1] // 4)


def _stub_model() -> FaceModel:
    return FaceModel(_ZeroNet(), {"input_size": 32}, Path("<stub>"))


def _samples(people: int, frames: int) -> list[FaceSample]:
    return [
        FaceSample(Path(f"p{p}_{f:02d}.jpg"), f"p{p}", np.zeros((68, 2)))
        for p in range(people)
        for f in range(frames)
    ]


def test_identity_split_keeps_every_person_on_one_side_and_is_repeatable():
    samples = _samples(30, 4)
    fit, validation = split_identities(samples, n_validation=6)
    assert {s.identity for s in fit}.isdisjoint({s.identity for s in validation})
    assert len({s.identity for s in validation}) == 6 and len(fit) + len(validation) == len(samples)
    assert [s.image for s in split_identities(samples, n_validation=6)[1]] == [s.image for s in validation]
    assert {s.identity for s in split_identities(samples, 6, seed=1)[1]} != {s.identity for s in validation}


def test_box_calibration_recovers_a_known_mapping():
    rng = np.random.default_rng(0)
    detected = np.column_stack([rng.uniform(0, 50, (40, 2)), np.zeros((40, 2))])
    side = rng.uniform(40, 90, 40)
    detected[:, 2:] = detected[:, :2] + side[:, None]
    known = BoxCalibration(0.05, 0.16, 1.04, 1.01)
    truth = np.array([known.apply(tuple(b)) for b in detected])
    fitted = fit_calibration(detected, truth)
    assert np.allclose([fitted.dx, fitted.dy, fitted.w, fitted.h], [0.05, 0.16, 1.04, 1.01], atol=1e-3)


@pytest.mark.parametrize(
    ("box", "problem"),
    [
        ((float("nan"), 0, 40, 40), "not four finite numbers"),
        ((0, 0, float("inf"), 40), "not four finite numbers"),
        ((0, 0, 40), "not four finite numbers"),
        ((500, 500, 560, 560), "0 % of it lies inside the image"),
        ((-60, 10, 20, 50), "lies inside the image"),
        ((10, 10, 14, 60), "smaller than 8 x 8"),
    ],
)
def test_unusable_face_boxes_are_refused_with_the_reason(box, problem):
    image = sitk.Image(100, 80, sitk.sitkUInt8)
    with pytest.raises(InputError, match=problem) as caught:
        detect_faces(_stub_model(), image, box=box)
    assert caught.value.what == "face box"


def test_no_face_found_means_no_detections_and_a_flag_with_the_reason():
    blank = sitk.Image(120, 100, sitk.sitkUInt8)
    assert detect_faces(_stub_model(), blank) == []
    detection = detect_landmarks(_stub_model(), blank)
    assert detection.flagged_no_face and "found no face" in detection.reason


def _two_face_photograph() -> tuple[sitk.Image, list[np.ndarray]]:
    """Two validation frames (people never trained on) side by side, and their true points."""
    samples = protocol_samples("validation")
    first, second = samples[0], next(s for s in samples if s.identity != samples[0].identity)
    arrays = [sitk.GetArrayFromImage(read_image(s.image, "face", dimension=2)) for s in (first, second)]
    height = max(a.shape[0] for a in arrays)
    canvas = np.zeros((height, arrays[0].shape[1] + arrays[1].shape[1], 3), np.uint8)
    canvas[: arrays[0].shape[0], : arrays[0].shape[1]] = arrays[0]
    canvas[: arrays[1].shape[0], arrays[0].shape[1] :] = arrays[1]
    truths = [first.points, second.points + np.array([arrays[0].shape[1], 0])]
    return sitk.GetImageFromArray(canvas, isVector=True), truths


def _assert_one_point_set_per_face(point_sets: list[np.ndarray], truths: list[np.ndarray]) -> None:
    """As many point sets as faces, each within 0.10 NME of a different face."""
    assert len(point_sets) == len(truths)
    for points in point_sets:
        errors = [np.nanmean(normalised_errors(points[None], t[None])) for t in truths]
        assert min(errors) < 0.10
    nearest = {int(np.argmin([np.abs(p - t).mean() for t in truths])) for p in point_sets}
    assert nearest == set(range(len(truths)))


@pytest.mark.realdata
def test_every_face_of_a_two_face_photograph_gets_its_own_points():
    image, truths = _two_face_photograph()
    kept = [f for f in detect_faces(FaceModel.load(), image) if not f.flagged_no_face]
    _assert_one_point_set_per_face([f.landmarks.points for f in kept], truths)


@pytest.mark.realdata
def test_cli_writes_one_point_list_per_face_under_predictable_names(tmp_path):
    """A two-face photograph: ``group.mrk.json`` holds the larger face, ``group.faces/face2.mrk.json``
    the other; a one-face input named like that folder keeps its own file beside it."""
    image, truths = _two_face_photograph()
    sitk.WriteImage(image, str(tmp_path / "group.png"))
    one_face = read_image(protocol_samples("validation")[0].image, "face", dimension=2)
    sitk.WriteImage(one_face, str(tmp_path / "group.faces.png"))
    out = tmp_path / "out"
    (out / "group.faces").mkdir(parents=True)
    (out / "group.faces" / "face3.mrk.json").write_text("{}")  # a former run's face: must go
    inputs = [str(tmp_path / "group.png"), str(tmp_path / "group.faces.png")]
    assert cli.main(["detect", "-o", str(out), *inputs]) == 0
    records = {Path(r["input"]).name: r for r in iter_records(out)}
    assert records["group.png"]["faces"] == 2 and records["group.faces.png"]["faces"] == 1
    assert records["group.png"]["outputs"] == [
        str(out / "group.mrk.json"),
        str(out / "group.faces" / "face2.mrk.json"),
    ]
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.mrk.json")) == [
        "group.faces.mrk.json",
        "group.faces/face2.mrk.json",
        "group.mrk.json",
    ]
    written = [read_landmarks(p, dimension=2).points for p in records["group.png"]["outputs"]]
    _assert_one_point_set_per_face([physical_to_index(image, p) for p in written], truths)


@pytest.mark.realdata
def test_bundled_model_from_whole_frames_of_unseen_people():
    """Every 20th validation frame, no box: nothing flagged, mean NME within 0.08."""
    model = FaceModel.load()
    errors = []
    for sample in protocol_samples("validation")[::20]:
        detection = detect_landmarks(model, read_image(sample.image, "face", dimension=2))
        assert not detection.flagged_no_face, (sample.image.name, detection.reason)
        errors.append(np.nanmean(normalised_errors(detection.landmarks.points[None], sample.points[None])))
    assert np.mean(errors) < 0.08


@pytest.mark.realdata
def test_a_cephalogram_gets_no_face_points():
    from LandmarkCoreLib.datasets import isbi_cases

    image = isbi_cases("all")[0].read_image()
    rgb = np.repeat(sitk.GetArrayFromImage(image)[..., None], 3, axis=2) / 255.0
    detection = detect_landmarks(FaceModel.load(), image)
    assert detection.flagged_no_face, f"{len(face_boxes(rgb))} boxes, none flagged"


def test_a_given_box_wins_over_the_localiser():
    image = sitk.Image(120, 100, sitk.sitkUInt8)
    faces = detect_faces(_stub_model(), image, box=(10, 10, 60, 70))
    assert len(faces) == 1 and faces[0].box == (10.0, 10.0, 60.0, 70.0)
    assert box_from_points(np.array([[0.0, 0.0], [10.0, 20.0]])) == (-1.0, -2.0, 11.0, 22.0)
