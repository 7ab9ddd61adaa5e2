"""KneeLandmarks: KNEEL hourglass landmark detection on 2D radiographs (Tiulpin et al. 2019) in Slicer.

This file is what Slicer's module factory loads: the module class, and the Widget, Logic and Test it
looks up by name, each in its own file of ``KneeLandmarksSlicer`` (the Logic imports no Qt). On a
Slicer older than the supported one, the module loads with a message instead of its panel.
"""

from __future__ import annotations

from LandmarkSlicerLib.module import describe_module
from LandmarkSlicerLib.version import check_supported
from slicer.ScriptedLoadableModule import ScriptedLoadableModule

UNSUPPORTED = check_supported()

CITATION = (
    'A. Tiulpin, I. Melekhov, S. Saarakkala, "KNEEL: Knee Anatomical Landmark Localization Using '
    'Hourglass Networks", ICCV Workshops 2019.'
)


HELP = f"""
Detect anatomical landmarks on a 2D radiograph with a two-stage hourglass network (KNEEL); the bundled
model adds a third stage that refines each landmark in a finer patch.
Choose the radiograph, a model (the bundled cephalometric model trained on ISBI 2015, a model file
trained with <code>knee-landmarks train</code>, or a snapshot folder published by the KNEEL authors)
and press <b>Detect</b>. A folder of images is processed in the background.
<p>Method: {CITATION}</p>
"""
ACKNOWLEDGEMENT = """
The bundled cephalometric model was trained on the ISBI 2015 challenge cephalograms (Wang et al.,
Med Image Anal 2016; research use with citation). Knee radiographs of the OAI need a data-use agreement.
"""


class KneeLandmarks(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        describe_module(self.parent, "Knee Landmarks", HELP, ACKNOWLEDGEMENT, UNSUPPORTED)


if not UNSUPPORTED:
    from KneeLandmarksSlicer.logic import KneeLandmarksLogic  # noqa: F401
    from KneeLandmarksSlicer.selftest import KneeLandmarksTest  # noqa: F401
    from KneeLandmarksSlicer.widget import KneeLandmarksWidget  # noqa: F401
