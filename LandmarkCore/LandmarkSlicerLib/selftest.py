"""The base of the modules' self-tests (what Slicer runs with --testing): a clear scene, every
``test_*`` method, and a skip with a message where torch is absent."""

from __future__ import annotations

import slicer
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleTest

from .gui import torch_available


class LandmarkSelfTest(ScriptedLoadableModuleTest):
    def setUp(self) -> None:
        slicer.mrmlScene.Clear()
        if not torch_available():
            self.skipTest("PyTorch is not installed: install it from the PyTorch Utils module")

    def runTest(self) -> None:
        for name in sorted(n for n in dir(self) if n.startswith("test_")):
            self.setUp()
            getattr(self, name)()
