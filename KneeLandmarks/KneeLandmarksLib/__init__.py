"""KNEEL radiograph landmark detection (Tiulpin et al. 2019): algorithms, without Slicer."""
