"""FaceLandmarks: 68-point facial landmarks with cross-task representation learning (Fu et al. 2020).

This file is what Slicer's module factory loads: the module class, and the Widget, Logic and Test it
looks up by name, each in its own file of ``FaceLandmarksSlicer`` (the Logic imports no Qt). On a
Slicer older than the supported one, the module loads with a message instead of its panel.
"""

from __future__ import annotations

from LandmarkSlicerLib.module import describe_module
from LandmarkSlicerLib.version import check_supported
from slicer.ScriptedLoadableModule import ScriptedLoadableModule

UNSUPPORTED = check_supported()

CITATION = (
    'Z. Fu, J. Jiao, M. Suttie, J. A. Noble, "Cross-Task Representation Learning for Anatomical '
    'Landmark Detection", MICCAI Workshop on Machine Learning in Medical Imaging (MLMI) 2020.'
)


HELP = f"""
Detect the 68 facial landmarks (iBUG/300-W layout) on a 2D photograph. Choose the photograph, the face
region (the whole image or a markups ROI drawn around the face), a model, and press <b>Detect</b>.
A folder of photographs is processed in the background.
<p>Method: {CITATION}</p>
"""
ACKNOWLEDGEMENT = """
The bundled model was trained on frames of the YouTube Faces DB (Wolf, Hassner, Maoz, CVPR 2011) with
68-point annotations; research use.
"""


class FaceLandmarks(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        describe_module(
            self.parent,
            "Face Landmarks",
            HELP,
            ACKNOWLEDGEMENT,
            UNSUPPORTED,
            "FaceLandmarksSlicer.sample_data",
        )


if not UNSUPPORTED:
    from FaceLandmarksSlicer.logic import FaceLandmarksLogic  # noqa: F401
    from FaceLandmarksSlicer.selftest import FaceLandmarksTest  # noqa: F401
    from FaceLandmarksSlicer.widget import FaceLandmarksWidget  # noqa: F401
