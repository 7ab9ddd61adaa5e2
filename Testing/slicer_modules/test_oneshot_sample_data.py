"""The human sample (MNI152 2009c T1 + 32 AFIDs) loads from the autoafids wheel's layout into a real scene.

No download here (no internet in CI): the archive is built from the same real files of ../shared/data
(byte-identical to the wheel's members, whose checksums the loader verifies) at the wheel's member paths.
"""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import slicer
from LandmarkCoreLib.errors import InputError
from LandmarkCoreLib.landmarks import read_landmarks
from module_test_helpers import scene_snapshot
from OneShotLandmarksSlicer.sample_data import HUMAN_FILES, HUMAN_SAMPLE, loadHumanTemplate

pytestmark = pytest.mark.realdata

SHARED_NAMES = ("tpl-MNI152NLin2009cAsym_res-01_T1w.nii.gz", "tpl-MNI152NLin2009cAsym_afids.fcsv")


def _wheel(folder, data_root, replace_t1: bytes | None = None):
    source = data_root / "human_brain_mri_afids"
    path = folder / "autoafids.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for (member, _), name in zip(HUMAN_FILES, SHARED_NAMES, strict=True):
            data = (source / name).read_bytes()
            archive.writestr(member, replace_t1 if replace_t1 is not None and name.endswith(".gz") else data)
    return path


def test_human_template_loads_as_a_volume_and_its_afids(scene, data_root, tmp_path):
    volume, markups = loadHumanTemplate(_wheel(tmp_path, data_root), scene)
    assert volume.GetName() == HUMAN_SAMPLE and markups.GetName() == f"{HUMAN_SAMPLE} landmarks"
    assert volume.GetImageData().GetDimensions() == (193, 229, 193)
    np.testing.assert_allclose(volume.GetSpacing(), (1.0, 1.0, 1.0))
    labels = [markups.GetNthControlPointLabel(i) for i in range(markups.GetNumberOfControlPoints())]
    assert labels == [str(i) for i in range(1, 33)]  # the AFID numbers; the names are descriptions
    assert [markups.GetNthControlPointDescription(i) for i in (0, 1)] == ["AC", "PC"]
    truth = read_landmarks(data_root / "human_brain_mri_afids" / SHARED_NAMES[1])  # LPS
    ras = slicer.util.arrayFromMarkupsControlPoints(markups)
    np.testing.assert_allclose(ras, truth.points * [-1, -1, 1], atol=1e-6)
    bounds = np.zeros(6)
    volume.GetRASBounds(bounds)
    assert ((ras >= bounds[0::2]) & (ras <= bounds[1::2])).all()  # every AFID inside the head image


def test_a_sample_file_with_another_checksum_is_refused(scene, data_root, tmp_path):
    wheel = _wheel(tmp_path, data_root, replace_t1=b"not the template")
    before = scene_snapshot(scene)
    with pytest.raises(InputError, match="T1w.nii.gz.*different checksum"):
        loadHumanTemplate(wheel, scene)
    assert scene_snapshot(scene) == before
    (tmp_path / "broken.zip").write_bytes(b"PK not a zip")
    with pytest.raises(InputError, match="cannot be read"):
        loadHumanTemplate(tmp_path / "broken.zip", scene)


def test_otsu_threshold_soi_of_the_template_is_the_head_around_every_afid(scene, data_root, tmp_path):
    """The module's own SOI tool without a threshold (Otsu's): one head segment holding all 32 AFIDs."""
    import SimpleITK as sitk
    from LandmarkSlicerLib.mrml_bridge import segment_to_mask
    from OneShotLandmarksSlicer.logic import OneShotLandmarksLogic

    volume, _ = loadHumanTemplate(_wheel(tmp_path, data_root), scene)
    segmentation, segment = OneShotLandmarksLogic(scene).createThresholdSoi(volume, None)
    mask = segment_to_mask(segmentation, segment, volume)
    afids = read_landmarks(data_root / "human_brain_mri_afids" / SHARED_NAMES[1]).points  # LPS
    assert all(mask[mask.TransformPhysicalPointToIndex(p.tolist())] for p in afids)
    array = sitk.GetArrayViewFromImage(mask)
    print(f"Otsu head SOI: {array.mean():.1%} of the field of view")
    assert not array[:: array.shape[0] - 1, :: array.shape[1] - 1, :: array.shape[2] - 1].any()  # corners
    assert 0.2 < array.mean() < 0.6  # a head in its 193 x 229 x 193 mm field of view, not all of it
