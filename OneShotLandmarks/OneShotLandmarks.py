"""OneShotLandmarks: one-shot 3D landmark detection (Wang et al. 2021) as a 3D Slicer module.

This file is what Slicer's module factory loads: the module class, and the Widget, Logic and Test
it looks up by name. Each lives in its own file of ``OneShotLandmarksSlicer`` (the Logic imports no
Qt, so other front ends use it on their own scene). On a Slicer older than the supported one, the
module loads with a message instead of its panel.
"""

from __future__ import annotations

from LandmarkSlicerLib.module import describe_module
from LandmarkSlicerLib.version import check_supported
from slicer.ScriptedLoadableModule import ScriptedLoadableModule

UNSUPPORTED = check_supported()

CITATION = (
    'Z. Wang, C. Vandersteen, C. Raffaelli, N. Guevara, F. Patou, H. Delingette, "One-shot '
    'learning for landmarks detection", MICCAI 2021 Workshop on Data Augmentation, Labeling, and '
    "Imperfections (DALI), pp. 163-172."
)
MOUSE_DATA_CITATION = (
    'A. M. Maga, N. J. Tustison, B. B. Avants, "A population level atlas of Mus musculus craniofacial '
    'skeleton and automated image-based shape analysis", J Anat 231:433-443 (2017).'
)


HELP = f"""
Detect the landmarks of one annotated reference volume on new 3D volumes of the same anatomy.
Place landmarks on the reference, segment the structure of interest (SOI) with the Segment Editor,
choose a validation volume with its SOI, press <b>Train</b>, then <b>Detect</b> on a target volume or
a whole folder. Training and batch detection run in the background and can be cancelled.
<p>Method: {CITATION}</p>
"""
ACKNOWLEDGEMENT = f"""
Implements the one-shot method of Wang et al. (iterative SOI localization with a shallow 2D U-Net,
inertia-based rotation, rigid + demons registration). Sample data: {MOUSE_DATA_CITATION}
"""


class OneShotLandmarks(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        describe_module(
            self.parent,
            "One-Shot Landmarks",
            HELP,
            ACKNOWLEDGEMENT,
            UNSUPPORTED,
            "OneShotLandmarksSlicer.sample_data",
        )


if not UNSUPPORTED:
    from OneShotLandmarksSlicer.logic import OneShotLandmarksLogic  # noqa: F401
    from OneShotLandmarksSlicer.selftest import OneShotLandmarksTest  # noqa: F401
    from OneShotLandmarksSlicer.widget import OneShotLandmarksWidget  # noqa: F401
