"""Shared, Slicer-independent building blocks of the landmark-detection extension.

Every module (OneShotLandmarks, KneeLandmarks, FaceLandmarks) uses this package for landmark and
image I/O, evaluation, model files, progress reporting and device selection, so that each idea has
one implementation. It never imports ``slicer``: what needs MRML is in the Slicer-only package
``LandmarkSlicerLib`` beside it.
"""
