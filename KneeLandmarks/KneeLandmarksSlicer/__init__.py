"""The Slicer side of KneeLandmarks: :mod:`.logic` (no Qt), :mod:`.parameters`, :mod:`.widget`,
:mod:`.selftest`. What it shares with FaceLandmarks is in ``LandmarkSlicerLib.detector``."""
