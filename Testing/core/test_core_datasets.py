"""Readers of the real data sets in ../shared/data (and the data-root lookup)."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from LandmarkCoreLib import datasets
from LandmarkCoreLib.errors import InputError
from LandmarkCoreLib.images import physical_to_index, points_inside


def test_data_root_env_is_honoured_and_checked(tmp_path, monkeypatch):
    monkeypatch.setenv(datasets.DATA_ROOT_ENV, str(tmp_path))
    assert datasets.default_data_root() == tmp_path
    monkeypatch.setenv(datasets.DATA_ROOT_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(InputError, match="is not a folder"):
        datasets.default_data_root()


def test_face_identity_is_name_before_last_number():
    assert datasets.face_identity("Abdel_Aziz_Al-Hakim_12.jpg") == "Abdel_Aziz_Al-Hakim"
    assert datasets.face_identity("Al_Gore_0.jpg") == "Al_Gore"


def test_kneel_roi_mapping_round_trips_and_mirrors_left_knees():
    bbox = np.array([967, 166, 1433, 632])
    roi = np.array([[10.0, 20.0], [233.0, 233.0]])
    right = datasets.kneel_roi_to_image(roi, bbox, "R")
    left = datasets.kneel_roi_to_image(roi, bbox, "L")
    np.testing.assert_allclose(right[0], [967 + 10 - 100, 166 + 20 - 100])
    np.testing.assert_allclose(left[0], [967 + 466 - 10 - 100, 166 + 20 - 100])
    np.testing.assert_allclose(datasets.kneel_roi_to_image(roi, bbox, "R", image_spacing_mm=0.15), right * 2)
    for side in "LR":
        image = datasets.kneel_roi_to_image(roi, bbox, side, 0.2)
        np.testing.assert_allclose(datasets.kneel_image_to_roi(image, bbox, side, 0.2), roi)
    np.testing.assert_array_equal(datasets.kneel_bbox_around((1200, 399)), bbox)


@pytest.mark.realdata
def test_every_mouse_landmark_lies_inside_its_volume(data_root):
    subjects = datasets.mouse_skull_subjects(data_root)
    assert len(subjects) == 20
    for subject in subjects:
        landmarks = subject.read_landmarks()
        assert len(landmarks) == 45 and landmarks.dim == 3
        assert "23" not in landmarks.labels and "51" in landmarks.labels
        outside = ~points_inside(subject.read_image(), landmarks.points)
        assert not outside.any(), f"{subject.name}: {np.array(landmarks.labels)[outside]} outside"


@pytest.mark.realdata
def test_mouse_landmarks_sit_near_bone(data_root):
    """Landmarks are placed on bone: most lie within 1 mm of the bone mask (checks the LPS convention)."""
    subject = datasets.mouse_skull_subjects(data_root)[0]
    mask = sitk.ReadImage(str(subject.bone_mask))
    distance = sitk.SignedMaurerDistanceMap(
        mask, insideIsPositive=False, squaredDistance=False, useImageSpacing=True
    )
    landmarks = subject.read_landmarks()
    assert points_inside(distance, landmarks.points).all()
    index = np.rint(physical_to_index(distance, landmarks.points)).astype(int)
    values = np.array([distance[tuple(int(v) for v in i)] for i in index])
    assert np.mean(values < 1.0) > 0.9, values
    template = datasets.mouse_skull_template(data_root)
    assert len(datasets.read_landmarks(template.landmarks)) == 45


@pytest.mark.realdata
def test_isbi_tables_agree_in_mm_and_pixels(data_root):
    cases = datasets.isbi_cases("all", data_root)
    assert len(cases) == 300 and cases[0].case_id == "001" and cases[-1].case_id == "300"
    assert cases[0].senior.labels[0] == "sella" and len(cases[0].junior) == 19
    pixels = datasets.read_isbi_pixel_table(data_root / datasets.ISBI_DIR / "train_senior.csv")
    pixels |= datasets.read_isbi_pixel_table(data_root / datasets.ISBI_DIR / "test1_senior.csv")
    assert len(pixels) == 300
    for case in cases:
        np.testing.assert_allclose(pixels[case.case_id].points, case.senior.points, atol=0.051)
    assert [c.case_id for c in datasets.isbi_cases("test1", data_root)][:1] == ["151"]


@pytest.mark.realdata
def test_isbi_annotation_picks_an_annotator_or_their_mean(data_root):
    case = datasets.isbi_cases("train", data_root)[0]
    assert case.annotation() is case.senior and case.annotation("junior") is case.junior
    mean = case.annotation("mean")
    np.testing.assert_allclose(mean.points, (case.senior.points + case.junior.points) / 2)
    assert mean.labels == case.senior.labels
    assert 0 < np.linalg.norm(mean.points - case.senior.points, axis=1).max() < 10
    with pytest.raises(InputError, match="'resident' is not one of senior, junior, mean"):
        case.annotation("resident")


@pytest.mark.realdata
def test_isbi_image_has_its_spacing_and_holds_the_landmarks(data_root):
    case = datasets.isbi_cases("train", data_root)[0]
    image = case.read_image()
    assert image.GetSize() == (1935, 2400) and image.GetSpacing() == pytest.approx((0.1, 0.1))
    assert points_inside(image, case.senior.points).all()


@pytest.mark.realdata
def test_youtube_faces_have_68_points_and_identities(data_root):
    train = datasets.youtube_faces_samples("train", data_root)
    test = datasets.youtube_faces_samples("test", data_root)
    assert len(train) == 3069 and len(test) == 681
    assert all(s.points.shape == (68, 2) for s in train + test)
    assert len({s.identity for s in train + test}) > 250
    for sample in train[:: len(train) // 5]:
        image = sitk.ReadImage(str(sample.image))
        assert image.GetSize()[0] > 50
        assert 0.1 < sample.inter_ocular_distance() / image.GetSize()[0] < 0.9
        assert np.mean(points_inside(image, sample.points)) > 0.9


@pytest.mark.realdata
def test_kneel_table_geometry(data_root):
    knees = datasets.read_kneel_csv(data_root / datasets.KNEEL_DIR / datasets.KNEEL_CSV)
    assert len(knees) == 748
    assert {k.side for k in knees} == {"L", "R"} and {k.kl for k in knees} == {0, 1, 2, 3, 4}
    for knee in knees:
        assert knee.points.shape == (16, 2)
        np.testing.assert_array_equal(knee.bbox, datasets.kneel_bbox_around(knee.center))
        # KNEEL centres the ROI on the middle tibial point: mapped back it lands on `center`.
        middle = knee.image_points()[4] + datasets.KNEEL_PAD_PX
        assert np.abs(middle - knee.center).max() <= 1.0, knee.subject_id
    assert knees[0].landmarks().points.max() <= datasets.KNEEL_ROI_SIZE_MM
