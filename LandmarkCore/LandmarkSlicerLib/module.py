"""The description every module of this extension gives Slicer's module factory, written once."""

from __future__ import annotations

import importlib


def describe_module(
    parent,
    title: str,
    help_html: str,
    acknowledgement_html: str,
    unsupported: str | None,
    sample_data_module: str | None = None,
) -> None:
    """Fill ``parent`` (the module's qSlicerScriptedLoadableModule) for the Landmark Detection category.

    ``sample_data_module`` (e.g. ``"FaceLandmarksSlicer.sample_data"``) has a ``registerSampleData()``,
    imported and called once Slicer has started (when the SampleData module exists). On an unsupported
    Slicer the help text is the reason and no sample data is registered.
    """
    parent.title = title
    parent.categories = ["Landmark Detection"]
    parent.dependencies = []
    parent.contributors = ["SlicerLandmarkDetection developers"]
    parent.helpText = unsupported or help_html
    parent.acknowledgementText = acknowledgement_html
    if sample_data_module is not None and not unsupported:
        import slicer

        def register() -> None:
            importlib.import_module(sample_data_module).registerSampleData()

        slicer.app.connect("startupCompleted()", register)
