"""The one-shot page: reference + landmarks + SOI, validation, Train (background, Cancel), Detect, QC,
evaluate, download. It drives OneShotLandmarksLogic, the Slicer module's own Logic, on the session's scene.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path
from typing import Any

from LandmarkCoreLib.images import IMAGE_SUFFIXES_3D as VOLUME_SUFFIXES

from .files import LANDMARK_SUFFIXES
from .session import png_data_url
from .widgets import button, download_button, file_chooser, message

P = "oneshot"


class OneShotPage:
    prefix = P
    title = "One-shot 3D"

    def __init__(self, session: Any) -> None:
        from OneShotLandmarksSlicer.logic import OneShotLandmarksLogic

        self.session = session
        self.logic = OneShotLandmarksLogic(session.scene)
        self.work = Path(tempfile.mkdtemp(prefix="landmark-web-oneshot-"))
        self.nodes: dict[str, Any] = {}
        self.task = None
        defaults = {"message": "", "busy": False, "task": False, "progress": 0, "qc": "", "error": ""}
        defaults.update({"threshold": 40.0, "epochs": 25, "width": 32, "folder": None})
        for key, value in defaults.items():
            session.state[f"{P}_{key}"] = value
        session.state[f"{P}_folder_items"] = self._folders()

    def _folders(self) -> list[str]:
        names = {str(Path(n).parent) for n in self.session.data.list(VOLUME_SUFFIXES)}
        return sorted(n for n in names if n != ".")

    # -- layout -------------------------------------------------------------------------------
    def panel(self) -> None:
        from trame.widgets import html
        from trame.widgets import vuetify3 as v3

        s = self.session
        html.Div("1. Reference", classes="text-subtitle-2")
        file_chooser(s, P, "reference", "Reference volume", VOLUME_SUFFIXES)
        button("Load reference", self.load_reference, "oneshot-load-reference")
        file_chooser(s, P, "landmarks", "Reference landmarks", LANDMARK_SUFFIXES)
        button("Import landmarks", self.import_landmarks, "oneshot-import-landmarks")
        button("Place landmarks", self.place_landmarks, "oneshot-place-landmarks")
        v3.VTextField(label="SOI threshold", v_model=(f"{P}_threshold",), type="number", density="compact",
                      hide_details=True, id="oneshot-threshold")  # fmt: skip
        html.Div("2. Validation", classes="text-subtitle-2 mt-2")
        file_chooser(s, P, "validation", "Validation volume", VOLUME_SUFFIXES)
        html.Div("3. Train", classes="text-subtitle-2 mt-2")
        with v3.VRow(dense=True):
            for key, label in (("epochs", "epochs"), ("width", "U-Net width")):
                with v3.VCol():
                    v3.VTextField(label=label, v_model=(f"{P}_{key}",), type="number", density="compact",
                                  hide_details=True, id=f"oneshot-{key}")  # fmt: skip
        button("Train", self.train, "oneshot-train", f"{P}_busy")
        button("Cancel", self.cancel, "oneshot-cancel", f"!{P}_task")
        html.Div("4. Detect", classes="text-subtitle-2 mt-2")
        file_chooser(s, P, "target", "Target volume", VOLUME_SUFFIXES)
        button("Detect on target", self.detect_target, "oneshot-detect", f"{P}_busy")
        v3.VSelect(label="or a data-folder folder", v_model=(f"{P}_folder",), items=(f"{P}_folder_items",),
                   density="compact", hide_details=True, id="oneshot-folder")  # fmt: skip
        button("Detect on folder", self.detect_folder, "oneshot-detect-folder", f"{P}_busy")
        file_chooser(s, P, "truth", "Truth landmarks", LANDMARK_SUFFIXES)
        button("Evaluate", self.evaluate, "oneshot-evaluate")
        download_button(s.server, "Download .mrk.json", self.download, "oneshot-download")
        message(P)
        html.Div("{{ oneshot_error }}", id="oneshot-error", classes="text-body-2")
        html.Img(v_if=(f"{P}_qc",), src=(f"{P}_qc",), style="width: 100%", id="oneshot-qc")

    # -- reference ----------------------------------------------------------------------------
    def _guarded(self, action) -> None:
        try:
            action()
        except Exception as error:
            self.session.fail(P, error)

    def _load_volume(self, key: str, what: str) -> Any:
        from LandmarkSlicerLib.scene import load_image_node

        path = self.session.input_file(P, key, VOLUME_SUFFIXES, what)
        return path, load_image_node(path, self.logic.scene)

    def load_reference(self) -> None:
        def run():
            _, self.nodes["reference"] = self._load_volume("reference", "reference volume")
            self.session.show(self.nodes["reference"])
            self.session.state[f"{P}_message"] = f"Reference {self.nodes['reference'].GetName()} loaded"

        self._guarded(run)

    def _landmarks_node(self, key: str, what: str) -> Any:
        from LandmarkCoreLib.landmarks import read_landmarks
        from LandmarkSlicerLib.mrml_bridge import landmarks_to_markups_node

        path = self.session.input_file(P, key, LANDMARK_SUFFIXES, what)
        return landmarks_to_markups_node(read_landmarks(path, what), self.logic.scene, what)

    def import_landmarks(self) -> None:
        def run():
            self.nodes["landmarks"] = self._landmarks_node("landmarks", "reference landmarks")
            count = self.nodes["landmarks"].GetNumberOfControlPoints()
            self.session.state[f"{P}_message"] = f"{count} reference landmarks"

        self._guarded(run)

    def place_landmarks(self) -> None:
        node = self.nodes.get("landmarks")
        if node is None:
            node = self.logic.scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "reference landmarks")
            self.nodes["landmarks"] = node
        self.session.place(node)
        self.session.state[f"{P}_message"] = "Click in a view to add a landmark; drag to move"

    # -- training -----------------------------------------------------------------------------
    def _training_inputs(self) -> Any:
        from LandmarkSlicerLib.scene import require_node
        from OneShotLandmarksLib.config import TrainingConfig
        from OneShotLandmarksSlicer.logic import TrainingInputs

        self.session.stop_placing()
        state = self.session.state
        require_node(self.nodes.get("reference"), "reference volume")
        _, validation = self._load_volume("validation", "validation volume")
        threshold = float(state[f"{P}_threshold"])
        ref_soi, ref_id = self.logic.createThresholdSoi(self.nodes["reference"], threshold)
        val_soi, val_id = self.logic.createThresholdSoi(validation, threshold)
        settings = TrainingConfig(max_epochs=int(state[f"{P}_epochs"]), width=int(state[f"{P}_width"]))
        model = Path(tempfile.mkdtemp(dir=self.work)) / "model.pt"  # a cancelled run's checkpoint stays apart
        return TrainingInputs(self.nodes["reference"], self.nodes.get("landmarks"), ref_soi, ref_id,
                              validation, val_soi, val_id, settings, model)  # fmt: skip

    def train(self) -> None:
        def run():
            inputs = self._training_inputs()
            self._start(self.logic.startTraining(inputs), self._trained, "Training ...")

        self._guarded(run)

    def _start(self, task: Any, done, text: str) -> None:
        state = self.session.state
        self.task = task
        state[f"{P}_busy"], state[f"{P}_task"] = True, True
        state[f"{P}_progress"], state[f"{P}_message"] = 0, text
        asyncio.get_event_loop().create_task(self.session.watch(P, task, done))

    def _trained(self, model: Any) -> None:
        for soi in self.logic.scene.GetNodesByClass("vtkMRMLSegmentationNode"):  # not over the targets
            if soi.GetDisplayNode() is not None:
                soi.GetDisplayNode().SetVisibility(False)
        self.session.state[f"{P}_message"] = "Trained: " + self.logic.describeModel(model).replace("\n", "; ")

    def cancel(self) -> None:
        if self.task is not None and not self.task.finished:
            self.task.cancel()
            self.session.state[f"{P}_message"] = "Cancelling ..."

    # -- detection ----------------------------------------------------------------------------
    def _detect(self, inputFolder: Path, target: Any) -> None:
        from OneShotLandmarksSlicer.logic import DetectionInputs

        output = Path(tempfile.mkdtemp(dir=self.work))
        inputs = DetectionInputs(inputFolder=inputFolder, outputFolder=output)
        self._start(
            self.logic.startBatchDetection(inputs), lambda s: self._detected(s, target), "Detecting ..."
        )

    def detect_target(self) -> None:
        def run():
            path, target = self._load_volume("target", "target volume")
            self.session.show(target)
            folder = Path(tempfile.mkdtemp(dir=self.work))
            (folder / path.name).symlink_to(path)
            self._detect(folder, target)

        self._guarded(run)

    def detect_folder(self) -> None:
        def run():
            from LandmarkCoreLib.errors import InputError

            name = self.session.state[f"{P}_folder"]
            if name not in self._folders():
                raise InputError("detection folder", f"'{name}' is not a folder of the data folder")
            self._detect(self.session.data.root / name, None)

        self._guarded(run)

    def _detected(self, summary: Any, target: Any) -> None:
        from LandmarkCoreLib.landmarks import read_landmarks
        from LandmarkSlicerLib.scene import landmarks_into_node

        state = self.session.state
        state[f"{P}_message"] = str(summary)
        if not summary.written:
            return
        first = summary.written[0]
        qc = first.with_name(first.name.replace(".mrk.json", "_qc.png"))
        state[f"{P}_qc"] = png_data_url(qc) if qc.is_file() else ""
        if target is None:
            return
        landmarks = read_landmarks(first, "detected landmarks")
        self.nodes["detected"] = landmarks_into_node(landmarks, target, self.nodes.get("detected"))
        self.nodes["detected"].SetName(f"{target.GetName()} detected")
        self.nodes["target"] = target
        shutil.rmtree(first.parent, ignore_errors=True)
        state[f"{P}_message"] = f"{landmarks.points.shape[0]} landmarks detected on {target.GetName()}"

    def evaluate(self) -> None:
        def run():
            truth = self._landmarks_node("truth", "truth landmarks")
            _, mean = self.logic.evaluate(self.nodes.get("detected"), truth)
            self.session.state[f"{P}_error"] = f"Mean radial error {mean:.3f} mm"

        self._guarded(run)

    def download(self) -> dict | None:
        try:
            node = self.nodes.get("detected")
            return self.session.download(node, f"{node.GetName() if node else 'detected'}.mrk.json")
        except Exception as error:
            self.session.fail(P, error)
            return None
