"""The Slicer side of OneShotLandmarks, one job per file.

- :mod:`.logic`: ``OneShotLandmarksLogic`` and its inputs dataclasses (MRML, vtk and the Libs only:
  no Qt, usable on any ``vtkMRMLScene``, e.g. by a web front end).
- :mod:`.parameters`: the parameter node (Slicer's ``parameterNodeWrapper``).
- :mod:`.widget`: the GUI. :mod:`.sample_data`: the mouse skull samples. :mod:`.selftest`: the self-test.
"""
