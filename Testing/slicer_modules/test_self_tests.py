"""The modules' own self-tests (what Slicer runs with --testing) on real data, through Slicer's
ScriptedLoadableModuleTest. The images come from ../shared/data instead of the Sample Data downloads
(no internet here): the same photograph in another JPEG encoding. The OneShot self-test (tiny training,
about a minute) is not repeated here: test_oneshot_logic.py runs the same training and detection."""

from __future__ import annotations

import unittest

import pytest

pytestmark = pytest.mark.realdata


def _run(test_case) -> unittest.TestResult:
    result = unittest.TestResult()
    test_case.run(result)
    assert not result.skipped, result.skipped
    assert result.wasSuccessful(), result.failures + result.errors
    return result


def test_knee_self_test_on_a_real_cephalogram(scene, data_root, monkeypatch, capsys):
    from KneeLandmarksSlicer.selftest import KneeLandmarksTest

    monkeypatch.setenv("LANDMARK_DATA_ROOT", str(data_root))
    _run(KneeLandmarksTest("test_BundledModelOnRealCephalogram"))


def test_face_self_test_on_a_real_photograph(scene, data_root):
    from FaceLandmarksSlicer.logic import FaceLandmarksLogic
    from FaceLandmarksSlicer.selftest import FaceLandmarksTest
    from LandmarkCoreLib.datasets import youtube_faces_samples

    sample = next(
        s for s in youtube_faces_samples("test", data_root) if s.image.name == "Abdel_Aziz_Al-Hakim_01.jpg"
    )

    class LocalPhotograph(FaceLandmarksTest):
        def samplePhotograph(self):
            return FaceLandmarksLogic().loadImage(sample.image), sample.points

    _run(LocalPhotograph("test_BundledModelOnRealPhotograph"))
