"""One-shot 3D landmark detection (Wang et al. 2021): algorithms, without Slicer."""
