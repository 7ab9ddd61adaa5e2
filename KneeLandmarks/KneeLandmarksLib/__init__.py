"""KNEEL radiograph landmark detection (Tiulpin et al. 2019): algorithms, without Slicer.

Public API (what the Slicer Logic and the CLI use):

- :mod:`.pipeline`: ``KneeModel.load(path)``, ``default_model_path()`` (bundled cephalometric model),
  ``detect_landmarks(model, image_2d, progress=..., single_stage=False, mirror=False, notice=None,
  pixel_size_mm=None) -> LandmarkSet`` in the image's physical space.
- :mod:`.kneel_import`: ``import_kneel_snapshots(roi_folder, landmark_folder, output, mean_std=None)``
  turns the authors' released snapshot folders into a model file.
- :mod:`.training`: ``train_stage(cases, preset, TrainConfig(...), output, checkpoint, init_model,
  progress, cancel)``; :mod:`.data`: ``resolve_training_cases(spec)``; :mod:`.presets`: knee and
  cephalometric presets.
- :mod:`.network`: ``KneelHourglass`` (stable API, reused by FaceLandmarks).
- :mod:`.cli`: ``knee-landmarks train | detect | evaluate | import-kneel``.
"""
