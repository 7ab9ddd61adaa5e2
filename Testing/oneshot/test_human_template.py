"""On the human MNI152 template: the SOI tool gives the head, and a posed, warped copy moves each AFID
with the anatomy (the copy's intensity at the moved landmark is the template's at the original)."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from LandmarkCoreLib.landmarks import read_landmarks
from OneShotLandmarksLib.posing import PoseRecipe, posed_copy
from OneShotLandmarksLib.sampling import mask_centre_and_radius
from OneShotLandmarksLib.soi import threshold_soi

FOLDER = "human_brain_mri_afids"


def _smoothed_values(image: sitk.Image, points: np.ndarray) -> np.ndarray:
    smooth = sitk.SmoothingRecursiveGaussian(sitk.Cast(image, sitk.sitkFloat32), 3.0)
    return np.array([smooth.EvaluateAtPhysicalPoint([float(v) for v in p], sitk.sitkLinear) for p in points])


@pytest.mark.realdata
def test_head_mask_and_posed_copy_of_the_mni_template(data_root):
    folder = data_root / FOLDER
    template = sitk.ReadImage(str(folder / "tpl-MNI152NLin2009cAsym_res-01_T1w.nii.gz"))
    afids = read_landmarks(folder / "tpl-MNI152NLin2009cAsym_afids.fcsv")
    head = threshold_soi(template, what="MNI152 T1")
    _, radius = mask_centre_and_radius(head)
    assert 100 < radius < 160  # an adult head's bounding sphere (measured 137 mm)
    recipe = PoseRecipe(spacing_mm=(2.0, 2.0, 2.0), left_handed_grid=True)
    copy, moved, pose = posed_copy(template, afids, seed=3, recipe=recipe)
    assert (
        np.linalg.det(np.reshape(copy.GetDirection(), (3, 3))) < 0 and max(map(abs, pose["angles_deg"])) <= 45
    )
    original, posed = _smoothed_values(template, afids.points), _smoothed_values(copy, moved.points)
    assert np.median(np.abs(posed - original) / original) < 0.03
    assert np.linalg.norm(moved.points - afids.points, axis=1).max() > 10  # it did move
