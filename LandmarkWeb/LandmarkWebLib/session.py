"""One browser session: its own MRML scene, slice views (trame-slicer) and the modules' Logic objects.

Run as ``python -m LandmarkWebLib.session`` by the front door (:mod:`.cli`), one process per tab.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import logging
import os
import sys
from pathlib import Path
from typing import Any

from .files import DataFolder, Uploads


def use_layer_dm() -> None:
    """Make ``slicer.vtkMRMLLayerDM*`` importable: scripts/install_web.sh puts slicer-layer-dm beside the
    venv (``<venv>/slicer-layer-dm``), not into slicer-core's meta-package that every other test imports."""
    folder = Path(sys.prefix) / "slicer-layer-dm"
    if folder.is_dir() and str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkOSOpenGLRenderWindow")


IDLE_SECONDS = 120


class Session:
    """The scene, views and helpers every page of one tab shares."""

    def __init__(self, server: Any, data_folder: DataFolder, uploads: Uploads) -> None:
        from trame_slicer.core import LayoutManager, SlicerApp
        from trame_slicer.rca_view import register_rca_factories
        from trame_slicer.views import Layout, LayoutDirection, ViewLayoutDefinition

        self.server = server
        self.state = server.state
        self.data = data_folder
        self.uploads = uploads
        #: The last file uploaded per (page, chooser), as the browser sent it.
        self.uploaded: dict[tuple[str, str], dict | None] = {}
        self.app = SlicerApp()
        self.scene = self.app.scene
        register_rca_factories(self.app.view_manager, server)
        self.layouts = LayoutManager(self.scene, self.app.view_manager, server)
        axial, coronal, sagittal = (
            ViewLayoutDefinition.axial_view(),
            ViewLayoutDefinition.coronal_view(),
            ViewLayoutDefinition.sagittal_view(),
        )
        self.layouts.register_layout_dict(
            {
                "3D": Layout(LayoutDirection.Horizontal, [axial, coronal, sagittal]),
                "2D": Layout(LayoutDirection.Vertical, [axial]),
            }
        )
        self.layouts.set_layout("3D")

    def show(self, volume_node: Any) -> None:
        """Show a volume in the slice views, fitted."""
        self.app.display_manager.show_volume(volume_node, do_reset_views=True)

    def place(self, markups_node: Any) -> None:
        """Put the views in persistent place mode for ``markups_node`` (click adds points)."""
        self.app.markups_logic.place_node(markups_node, True)

    def stop_placing(self) -> None:
        self.app.markups_logic.disable_place_mode()

    def fail(self, prefix: str, error: Exception) -> None:
        """Show one line in the page's message (LandmarkError text names the input and the problem)."""
        from LandmarkCoreLib.errors import LandmarkError

        text = str(error) if isinstance(error, LandmarkError) else f"{type(error).__name__}: {error}"
        if not isinstance(error, LandmarkError):
            logging.exception("unexpected error")
        self.state[f"{prefix}_message"] = f"Error: {text}"
        self.state[f"{prefix}_busy"] = False

    def input_file(self, prefix: str, key: str, suffixes: tuple[str, ...], what: str) -> Path:
        """The file chosen for ``key``: an upload (``<prefix>_<key>_upload``) else a data-folder name."""
        from LandmarkCoreLib.errors import InputError

        upload = self.uploaded.get((prefix, key))
        if upload:
            return self.uploads.save(upload, suffixes, what)
        name = self.state[f"{prefix}_{key}"]
        if not name:
            raise InputError(what, "choose a data-folder file or upload one")
        return self.data.path(name, what)

    def download(self, landmarks_node: Any, file_name: str) -> dict:
        """The node's points as a .mrk.json file for the browser (written by the Core's writer)."""
        import tempfile

        from LandmarkCoreLib.landmarks import write_landmarks
        from LandmarkSlicerLib.mrml_bridge import markups_node_to_landmarks
        from LandmarkSlicerLib.scene import require_node

        require_node(landmarks_node, "landmarks to download")
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / file_name
            write_landmarks(path, markups_node_to_landmarks(landmarks_node))
            return {"name": file_name, "content": path.read_text()}

    async def watch(self, prefix: str, task: Any, done: Any) -> None:
        """Poll a Logic BackgroundTask without blocking the event loop; ``done(result)`` at the end."""
        from LandmarkCoreLib.errors import LandmarkError

        while not task.finished:
            for event in task.poll():
                with self.state:
                    if event.fraction is not None:
                        self.state[f"{prefix}_progress"] = round(100 * event.fraction)
                    self.state[f"{prefix}_message"] = event.message
            await asyncio.sleep(0.3)
        task.poll()
        with self.state:
            try:
                done(task.result())
            except LandmarkError as error:
                self.fail(prefix, error)
            self.state[f"{prefix}_busy"] = False
            self.state[f"{prefix}_task"] = False


def png_data_url(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode()


def end_with_parent(cancel: Any) -> None:
    """Exit (cancelling the running job) when the front door that started this session is gone."""
    import threading
    import time

    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(2)
        cancel()
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def build(server: Any, data_folder: str | None, upload_limit_mb: float) -> Session:
    """The session's scene and the three pages in one vuetify layout."""
    from trame.ui.vuetify3 import SinglePageWithDrawerLayout
    from trame.widgets import vuetify3 as v3
    from trame_slicer import module as trame_slicer_module

    from .detector_page import FacePage, KneePage
    from .oneshot_page import OneShotPage

    server.enable_module(trame_slicer_module)
    session = Session(server, DataFolder(data_folder), Uploads(int(upload_limit_mb * 2**20)))
    pages = [OneShotPage(session), KneePage(session), FacePage(session)]
    server.controller.on_server_exited.add(lambda **_: pages[0].cancel())
    end_with_parent(pages[0].cancel)
    state = server.state
    state.trame__title = "Landmark detection"
    state.page = pages[0].prefix

    @state.change("page")
    def _page_changed(page, **_):
        session.layouts.set_layout("3D" if page == "oneshot" else "2D")

    with SinglePageWithDrawerLayout(server) as layout:
        layout.title.set_text("Landmark detection")
        with layout.toolbar, v3.VTabs(v_model=("page",), density="compact"):
            for page in pages:
                v3.VTab(page.title, value=page.prefix, id=f"tab-{page.prefix}")
        with layout.drawer as drawer:
            drawer.width = 380
            for page in pages:
                with v3.VContainer(v_if=(f"page == '{page.prefix}'",), classes="pa-2"):
                    page.panel()
        with layout.content:
            session.layouts.initialize_layout_grid(layout)
    return session


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="One landmark-detection web session (one browser tab).")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--data-folder")
    parser.add_argument("--max-upload-mb", type=float, default=200.0)
    parser.add_argument("--idle-seconds", type=float, default=IDLE_SECONDS)
    args = parser.parse_args(argv)
    use_layer_dm()
    from trame.app import get_server

    server = get_server(client_type="vue3")
    build(server, args.data_folder, args.max_upload_mb)
    # The session ends --idle-seconds after its tab closed, or after it started when no tab connects
    # (wslink's no-client timeout); a running job is cancelled then (OneShotPage.cancel on server exit).
    server.start(
        port=args.port,
        host=args.host,
        open_browser=False,
        show_connection_info=False,
        timeout=args.idle_seconds,
    )


if __name__ == "__main__":
    main()
