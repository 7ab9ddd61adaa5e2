"""Shared, Slicer-independent building blocks of the landmark-detection extension.

Every module (OneShotLandmarks, KneeLandmarks, FaceLandmarks) uses this package for landmark and
image I/O, evaluation, model files, progress reporting and device selection, so that each idea has
one implementation. Only the Slicer-side modules :mod:`~LandmarkCoreLib.mrml_bridge` and
:mod:`~LandmarkCoreLib.slicer_support` import ``slicer``; the module Libs never do.
"""
