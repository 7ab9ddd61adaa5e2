"""The Knee and Face pages: load a 2D image, Detect with the bundled model, drag points, download.

They drive KneeLandmarksLogic / FaceLandmarksLogic (the Slicer modules' own Logic) on the session's scene.
"""

from __future__ import annotations

import asyncio
from typing import Any

from LandmarkCoreLib.images import IMAGE_SUFFIXES_2D as IMAGE_SUFFIXES

from .widgets import button, download_button, file_chooser, message


class DetectorPage:
    """What the two 2D pages share; a page names its Logic and inputs classes."""

    prefix = ""
    title = ""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.logic = self.make_logic(session.scene)
        self.image = None
        self.points = None
        state = session.state
        for key, value in (("message", ""), ("busy", False), ("progress", 0), ("spacing", "")):
            state[f"{self.prefix}_{key}"] = value

    def make_logic(self, scene: Any) -> Any:
        raise NotImplementedError

    def inputs(self) -> Any:
        raise NotImplementedError

    def panel(self) -> None:
        from trame.widgets import vuetify3 as v3

        p = self.prefix
        file_chooser(self.session, p, "image", "Image", IMAGE_SUFFIXES)
        v3.VTextField(
            label="pixel size (mm; empty: the file's)",
            v_model=(f"{p}_spacing",),
            density="compact",
            hide_details=True,
            id=f"{p}-spacing",
        )
        button("Load image", (self.load, f"[{p}_spacing]"), f"{p}-load")  # the value typed, not a stale one
        self.extra_controls()
        button("Detect", self.detect, f"{p}-detect", f"{p}_busy")
        download_button(self.session.server, "Download .mrk.json", self.download, f"{p}-download")
        message(p)

    @staticmethod
    def _pixel_size(text: str | None) -> float | None:
        from LandmarkCoreLib.errors import InputError

        text = str(text or "").strip()
        if not text:
            return None
        try:
            value = float(text)
        except ValueError:
            value = -1.0
        if not 0 < value < 100:
            raise InputError("pixel size", f"'{text}' is not a size in mm between 0 and 100")
        return value

    def extra_controls(self) -> None:
        """Controls of one page only (the face box)."""

    def load(self, spacing: str | None = None) -> None:
        session, p = self.session, self.prefix
        try:
            path = session.input_file(p, "image", IMAGE_SUFFIXES, "image")
            pixel = self._pixel_size(spacing)
            self.image = self.logic.loadImage(path)
            self.points = None
            if pixel is not None:
                self.image.SetSpacing(pixel, pixel, 1.0)
            session.show(self.image)
            session.state[f"{p}_message"] = f"Loaded {path.name}"
        except Exception as error:
            session.fail(p, error)

    async def detect(self) -> None:
        """The model loads in a worker thread (seconds); detection and the node change run on the loop."""
        session, p = self.session, self.prefix
        with session.state:
            session.state[f"{p}_busy"] = True
            session.state[f"{p}_message"] = "Detecting ..."
        try:
            inputs = self.inputs()
            if self.logic.model is None:
                await asyncio.get_running_loop().run_in_executor(None, self.logic.loadModel, inputs)
            with session.state:
                self.points = self.logic.detect(inputs)
                self.points.SetName(f"{self.image.GetName()} landmarks")
                session.state[f"{p}_message"] = (
                    f"{self.points.GetNumberOfControlPoints()} landmarks; drag them to correct"
                )
                session.state[f"{p}_busy"] = False
        except Exception as error:
            with session.state:
                session.fail(p, error)

    def download(self) -> dict | None:
        try:
            return self.session.download(self.points, f"{self.image.GetName()}.mrk.json")
        except Exception as error:
            self.session.fail(self.prefix, error)
            return None


class KneePage(DetectorPage):
    prefix = "knee"
    title = "Knee / cephalogram"

    def make_logic(self, scene: Any) -> Any:
        from KneeLandmarksSlicer.logic import KneeLandmarksLogic

        return KneeLandmarksLogic(scene)

    def inputs(self) -> Any:
        from KneeLandmarksSlicer.logic import KneeInputs

        return KneeInputs(inputVolume=self.image, outputNode=self.points)


class FacePage(DetectorPage):
    prefix = "face"
    title = "Face"

    def __init__(self, session: Any) -> None:
        super().__init__(session)
        self.box = None

    def make_logic(self, scene: Any) -> Any:
        from FaceLandmarksSlicer.logic import FaceLandmarksLogic

        return FaceLandmarksLogic(scene)

    def extra_controls(self) -> None:
        button("Draw face box", self.draw_box, "face-box")

    def draw_box(self) -> None:
        """An ROI node in place mode: two clicks in the view span the face box."""
        if self.box is None:
            self.box = self.session.scene.AddNewNodeByClass("vtkMRMLMarkupsROINode", "face box")
        self.session.place(self.box)
        self.session.state.face_message = "Click two corners of the face box"

    def inputs(self) -> Any:
        from FaceLandmarksSlicer.logic import FaceInputs

        self.session.stop_placing()
        region = "ROI" if self.box is not None and self.box.GetNumberOfControlPoints() else "whole image"
        return FaceInputs(inputVolume=self.image, outputNode=self.points, faceRegion=region, faceRoi=self.box)
