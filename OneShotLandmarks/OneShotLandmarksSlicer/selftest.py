"""OneShotLandmarksTest: the self-test inside Slicer (--testing): sample data, tiny training, detection."""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

from LandmarkSlicerLib.selftest import LandmarkSelfTest
from OneShotLandmarksLib.config import TrainingConfig

from .logic import DetectionInputs, OneShotLandmarksLogic, TrainingInputs
from .sample_data import MOUSE_SAMPLES, registerSampleData

#: Reduced training: about a minute on a CPU; full training reaches ~0.3-0.4 mm.
TINY = replace(TrainingConfig(), max_epochs=2, volumes_per_epoch=1, width=16, patience=1, device="cpu")
#: Mean radial error bound on the target mouse skull (tiny training measured 0.42 mm).
ERROR_BOUND_MM = 1.0


class OneShotLandmarksTest(LandmarkSelfTest):
    def sampleSkulls(self) -> list:
        """(volume node, landmarks node) of the reference, validation and target mouse skulls."""
        import SampleData

        registerSampleData()
        self.delayDisplay("Loading the mouse skull sample data")
        return [SampleData.SampleDataLogic().downloadSamples(sample[0]) for sample in MOUSE_SAMPLES]

    def test_TrainDetectEvaluate(self) -> None:
        (reference, referenceLandmarks), (validation, _), (target, targetTruth) = self.sampleSkulls()
        logic = OneShotLandmarksLogic()
        referenceSoi, referenceSegment = logic.createThresholdSoi(reference)
        validationSoi, validationSegment = logic.createThresholdSoi(validation)
        self.delayDisplay("Training with tiny settings")
        with tempfile.TemporaryDirectory() as folder:
            inputs = TrainingInputs(
                reference,
                referenceLandmarks,
                referenceSoi,
                referenceSegment,
                validation,
                validationSoi,
                validationSegment,
                settings=TINY,
                modelPath=Path(folder) / "model.pt",
            )
            logic.train(inputs)
        self.delayDisplay("Detecting")
        detected = logic.detect(DetectionInputs(target, device="cpu"))
        self.assertEqual(detected.GetNumberOfControlPoints(), referenceLandmarks.GetNumberOfControlPoints())
        _, mean = logic.evaluate(detected, targetTruth)
        self.delayDisplay(f"Mean radial error {mean:.3f} mm (bound {ERROR_BOUND_MM} mm)")
        self.assertLess(mean, ERROR_BOUND_MM)
        self.delayDisplay("Test passed")
