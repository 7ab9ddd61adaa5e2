"""The Slicer side of the landmark-detection extension: what needs ``slicer`` (MRML) to run.

- :mod:`.mrml_bridge`: MRML nodes (RAS) <-> SimpleITK images and LandmarkSets (LPS).
- :mod:`.scene`: node checks, results into markups nodes, error tables.
- :mod:`.tasks`: a module's CLI as a background child process whose results become nodes.
- :mod:`.logic`: the base of every module's Logic (works on a given scene; no Qt).
- :mod:`.detector`, :mod:`.widgets`, :mod:`.selftest`: the Logic, Widget and self-test bases (the
  2D detector modules Knee and Face share their Logic and Widget).
- :mod:`.gui`: Widget-side helpers (progress/Cancel, parameter node life cycle, dependencies); Qt is
  imported only inside them.
- :mod:`.version`: the supported Slicer versions.

The headless package ``LandmarkCoreLib`` and the module Libs never import this package.
"""
