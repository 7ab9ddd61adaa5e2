"""Helpers shared by the Slicer-module tests (a uniquely named module: every test area has a conftest)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
MODULES = ("OneShotLandmarks", "KneeLandmarks", "FaceLandmarks")


def scene_snapshot(scene) -> list[tuple[str, str, int]]:
    """(class, name, modified time) of every node: equal snapshots = the scene was left unchanged."""
    nodes = []
    for index in range(scene.GetNumberOfNodes()):
        node = scene.GetNthNode(index)
        nodes.append((node.GetClassName(), node.GetName() or "", int(node.GetMTime())))
    return sorted(nodes)


def assert_refused_leaving_scene_unchanged(scene, action, error: type[Exception], text: str) -> None:
    """``action()`` raises ``error`` matching ``text`` and leaves every node of ``scene`` as it was."""
    before = scene_snapshot(scene)
    with pytest.raises(error, match=text):
        action()
    assert scene_snapshot(scene) == before
