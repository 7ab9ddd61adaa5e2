"""The Slicer side of FaceLandmarks: :mod:`.logic` (no Qt), :mod:`.parameters`, :mod:`.widget`,
:mod:`.selftest`. What it shares with KneeLandmarks is in ``LandmarkSlicerLib.detector``."""
