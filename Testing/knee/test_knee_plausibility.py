"""Plausibility of a detection: the image-content check, the statistical shape model of the landmark
configuration, and the facing (mirrored film) handling on real cephalograms."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import SimpleITK as sitk  # noqa: N813
from KneeLandmarksLib.image_content import check_image_content, check_pixel_size
from KneeLandmarksLib.model_file import MODEL_KIND
from KneeLandmarksLib.pipeline import KneeModel, default_model_path, detect_landmarks
from KneeLandmarksLib.shape_model import ShapeModel, bounded_shape_model
from LandmarkCoreLib.errors import InputError, ModelFileError
from LandmarkCoreLib.modelfile import ModelFile, load_model_file, save_model_file

BASE = np.array([[0, 0], [40, 5], [70, 30], [60, 70], [20, 80], [-10, 45], [30, 35]], dtype=float)


def similar_copies(rng: np.random.Generator, n: int, noise_mm: float = 1.0) -> np.ndarray:
    """``n`` copies of BASE, each rotated, scaled (±5 %), moved and perturbed by ``noise_mm``."""
    shapes = []
    for _ in range(n):
        angle, scale = rng.uniform(-0.3, 0.3), rng.normal(1.0, 0.05)
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        shapes.append(
            scale * BASE @ rotation.T + rng.uniform(-50, 50, 2) + rng.normal(0, noise_mm, BASE.shape)
        )
    return np.stack(shapes)


@pytest.fixture(scope="module")
def shape_model() -> ShapeModel:
    return bounded_shape_model(similar_copies(np.random.default_rng(0), 80))[0]


def test_a_new_similar_configuration_is_plausible(shape_model):
    for shape in similar_copies(np.random.default_rng(1), 20):
        fit = shape_model.measure(shape)
        assert fit.plausible, fit
        assert fit.distance <= shape_model.facing_bound


def test_mirrored_scrambled_and_rescaled_configurations_are_not(shape_model):
    shape = similar_copies(np.random.default_rng(2), 1)[0]
    mirrored = shape * [-1.0, 1.0]
    scrambled = shape[[0, 1, 2, 4, 3, 5, 6]]
    assert shape_model.measure(mirrored).distance > shape_model.distance_bound
    assert shape_model.measure(scrambled).distance > shape_model.distance_bound
    assert not shape_model.measure(1.5 * shape).plausible  # e.g. a wrong pixel size
    assert shape_model.measure(1.5 * shape).distance < shape_model.facing_bound  # the shape itself is fine


def test_shape_model_round_trips_and_refuses_bad_values(shape_model):
    config = shape_model.to_config()
    again = ShapeModel.from_config(config, len(BASE), "m.pt")
    shape = similar_copies(np.random.default_rng(3), 1)[0]
    assert again.measure(shape) == shape_model.measure(shape)
    for key, value in (("variances", [-1.0] * len(shape_model.variances)), ("distance_bound", float("nan"))):
        with pytest.raises(ModelFileError, match="m.pt: shape model values out of range"):
            ShapeModel.from_config({**config, key: value}, len(BASE), "m.pt")
    with pytest.raises(ModelFileError, match="m.pt: unreadable shape model"):
        ShapeModel.from_config(config, len(BASE) + 1, "m.pt")


def smooth_image(rows: int = 200, cols: int = 160) -> np.ndarray:
    y, x = np.mgrid[0:rows, 0:cols]
    return (100 + 50 * np.sin(x / 9.0) * np.cos(y / 13.0)).astype(np.float32)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda a: np.zeros_like(a) + 7, "is blank"),
        (lambda a: np.random.default_rng(0).uniform(0, 255, a.shape).astype(np.float32), "looks like noise"),
        (lambda a: np.concatenate([a[:120], np.full_like(a[120:], 128)]), "40 % of the image along one edge"),
        (lambda a: np.where(a > 140, np.nan, a), "non-finite"),
    ],
)
def test_image_content_check_refuses_what_is_no_radiograph(damage, message):
    check_image_content(smooth_image())  # the undamaged image passes
    with pytest.raises(InputError, match=f"image: .*{message}"):
        check_image_content(damage(smooth_image()))


@pytest.fixture(scope="module")
def bundled_model() -> KneeModel:
    return KneeModel.load(default_model_path())


def mirrored(image: sitk.Image) -> sitk.Image:
    flipped = sitk.Flip(image, [True, False])
    flipped.CopyInformation(image)
    return flipped


@pytest.mark.realdata
def test_mirrored_real_film_gives_the_same_landmarks(data_root, bundled_model):
    """ISBI Test1 film 151 as given and stored mirrored (a patient facing left): the same landmarks,
    mapped back, within 0.5 mm mean; the mirrored film is reported with a notice."""
    from LandmarkCoreLib.datasets import isbi_cases

    case = isbi_cases("test1", data_root)[0]
    image = case.read_image()
    original = detect_landmarks(bundled_model, image).points[:, :2]
    notices = []
    found = detect_landmarks(bundled_model, mirrored(image), notice=notices.append).points[:, :2]
    width_mm = (image.GetSize()[0] - 1) * image.GetSpacing()[0]
    found[:, 0] = width_mm - found[:, 0]
    assert np.linalg.norm(found - original, axis=1).mean() < 0.5
    assert np.linalg.norm(original - case.senior.points[:, :2], axis=1).mean() < 3.0
    assert any("faces the other way" in n for n in notices)
    with pytest.raises(InputError, match="not a plausible cephalometric configuration"):
        detect_landmarks(bundled_model, mirrored(image), check_facing=False)


@pytest.mark.realdata
def test_real_film_at_a_wrong_pixel_size_is_refused(data_root, bundled_model):
    from LandmarkCoreLib.datasets import isbi_cases

    image = isbi_cases("test1", data_root)[0].read_image()
    with pytest.raises(InputError, match=r"pixel size \(0.05 mm\) is wrong"):
        detect_landmarks(bundled_model, image, pixel_size_mm=0.05, refine=False)


def test_pixel_size_check_compares_half_and_double():
    """Confidences as measured on film 152: 0.0241 at its 0.1 mm, 0.0090 told 0.2 mm."""
    at_true = {0.5: 0.0034, 2.0: 0.0090}
    check_pixel_size(0.0241, at_true.get, 0.1, 1.18)
    with pytest.raises(InputError, match=r"pixel size \(0.2 mm\) looks wrong: read at 0.1 mm .* 2.7 times"):
        check_pixel_size(0.0090, {0.5: 0.0241, 2.0: 0.0052}.get, 0.2, 1.18)


@pytest.mark.realdata
def test_real_film_at_double_its_pixel_size_is_refused(data_root, bundled_model):
    """Film 152 told 0.2 mm passed the shape model (distance 16.1, size +3.4 SD) before the pixel-size
    check; read at 0.1 mm its landmarks are found 2.7 times as confidently."""
    from LandmarkCoreLib.datasets import isbi_cases

    image = isbi_cases("test1", data_root)[1].read_image()
    assert len(detect_landmarks(bundled_model, image, pixel_size_mm=0.1).points) == 19
    with pytest.raises(InputError, match=r"pixel size \(0.2 mm\) looks wrong: read at 0.1 mm"):
        detect_landmarks(bundled_model, image, pixel_size_mm=0.2)


def test_crafted_confidence_bound_is_refused(tmp_path):
    stored = load_model_file(default_model_path(), MODEL_KIND)
    config = copy.deepcopy(stored.config)
    config["min_heatmap_confidence"] = 5.0
    save_model_file(tmp_path / "crafted.pt", ModelFile(stored.kind, config, stored.tensors))
    with pytest.raises(ModelFileError, match="min_heatmap_confidence 5.0 not in"):
        KneeModel.load(tmp_path / "crafted.pt")
    config = {**stored.config, "max_rescaled_confidence_ratio": float("nan")}
    save_model_file(tmp_path / "crafted.pt", ModelFile(stored.kind, config, stored.tensors))
    with pytest.raises(ModelFileError, match="max_rescaled_confidence_ratio nan not in"):
        KneeModel.load(tmp_path / "crafted.pt")
