"""The base of the modules' Logic classes: computation on the nodes of one MRML scene, no Qt.

Inside Slicer a Logic works on ``slicer.mrmlScene``; a web front end, a script or a test gives it
its own ``vtkMRMLScene``. The parameter node follows Slicer's ScriptedLoadableModuleLogic (one
singleton ``vtkMRMLScriptedModuleNode`` per module and scene), created on this Logic's scene.
"""

from __future__ import annotations

from typing import Any

import slicer


class SceneLogic:
    """Shared by every module's Logic: the scene it works on and its raw parameter node."""

    #: The module's name (parameter-node singleton tag and ModuleName attribute).
    moduleName = ""

    def __init__(self, scene: Any = None) -> None:
        self._scene = scene
        self.isSingletonParameterNode = True

    @property
    def scene(self) -> Any:
        """The given scene, else Slicer's (looked up on use: Slicer replaces it on scene close)."""
        return self._scene if self._scene is not None else slicer.mrmlScene

    def parameterNodeMRML(self) -> Any:
        """The module's ``vtkMRMLScriptedModuleNode`` in this scene, created when missing."""
        scene = self.scene
        node = scene.GetSingletonNode(self.moduleName, "vtkMRMLScriptedModuleNode")
        if node is None:
            node = scene.CreateNodeByClass("vtkMRMLScriptedModuleNode")
            node.UnRegister(None)  # owned by the Python variable now, as in Slicer's template
            node.SetSingletonTag(self.moduleName)
            node.SetName(scene.GenerateUniqueName(self.moduleName))
            node = scene.AddNode(node)
        if node.GetAttribute("ModuleName") != self.moduleName:
            node.SetAttribute("ModuleName", self.moduleName)
        return node
