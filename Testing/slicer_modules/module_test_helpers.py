"""Helpers shared by the Slicer-module tests (a uniquely named module: every test area has a conftest)."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
MODULES = ("OneShotLandmarks", "KneeLandmarks", "FaceLandmarks")


def scene_snapshot(scene) -> list[tuple[str, str, int]]:
    """(class, name, modified time) of every node: equal snapshots = the scene was left unchanged."""
    nodes = []
    for index in range(scene.GetNumberOfNodes()):
        node = scene.GetNthNode(index)
        nodes.append((node.GetClassName(), node.GetName() or "", int(node.GetMTime())))
    return sorted(nodes)
