"""Cross-task few-label facial landmarks (Fu et al. 2020): algorithms, without Slicer."""
