"""Sample data: public mouse skull micro-CT subjects of github.com/muratmaga/mouse_CT_atlas, and a
human head: the MNI152 2009c template T1 (1 mm) with its 32 AFIDs (anatomical fiducials).

The human files come from the ``autoafids`` 0.1.4 wheel on PyPI (MIT; a wheel is a zip): the button
downloads it once into Slicer's cache (checksum verified), takes the two files out (each checksum
verified) and loads them as "<name>" and "<name> landmarks".
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path
from typing import Any

from LandmarkCoreLib.atomic import write_bytes_atomic
from LandmarkCoreLib.errors import InputError

MOUSE_ATLAS_RAW = "https://raw.githubusercontent.com/muratmaga/mouse_CT_atlas"
#: (sample name, volume path, volume SHA256, landmarks path, landmarks SHA256) at fixed commits; the
#: self-test uses them as reference, validation and target.
MOUSE_SAMPLES = (
    (
        "MouseSkullC57BL6J",
        "2c782f6e2786a36d5a8fa0c73ecf3eccc7786898/data/targets/C57BL6_J_.nii.gz",
        "c689eb2800e54fb94e2f056540bc9e19610408dd267cc01f83ac405aad498887",
        "26e78989baf63b6954937e1113c5ac7981d143d7/data/target_LMs/C57BL6_J_.mrk.json",
        "20b4a49e6d605d47ef88e221d34754c3f51f28a4358c31e3949944a1d5558408",
    ),
    (
        "MouseSkullBALBcByJ",
        "2c782f6e2786a36d5a8fa0c73ecf3eccc7786898/data/targets/BALB_CBYJ_.nii.gz",
        "d1f6afa7a0698a4f2e1f8b148f0dc36608cacdd8df63eda310dab3d822e53257",
        "f79405e7333a2b3ee145fc4978aae6754d6c4244/data/target_LMs/BALB_CBYJ.mrk.json",
        "3530afa8b871f89927e6859384983bb706316d85f3762bbaa817b4ffce23f1fb",
    ),
    (
        "MouseSkullC3HHeJ",
        "2c782f6e2786a36d5a8fa0c73ecf3eccc7786898/data/targets/C3H_HEJ_.nii.gz",
        "9a2476988c67b9aa9105b5a082b0a1abc63434ec52fee5d72ebb71686fe151fb",
        "f79405e7333a2b3ee145fc4978aae6754d6c4244/data/target_LMs/C3H_HEJ.mrk.json",
        "5ce82937d29f668578d2bec1f315377bcfb47b418d221df317565431b85eed03",
    ),
)


HUMAN_SAMPLE = "HumanHeadMNI152T1"
AUTOAFIDS_WHEEL = (
    "https://files.pythonhosted.org/packages/99/f7/"
    "fcc52bc9a95cbf690eeffac8e85a0c504eed6bd4432aad54e798065b4c2d/autoafids-0.1.4-py3-none-any.whl"
)
AUTOAFIDS_WHEEL_SHA256 = "f949e0e1b01a01de122cd23fc8457444d455e50a7482cf4b2440f505778fcdbc"
#: Cached under a .zip name (what Slicer's archive tools expect of a zip).
AUTOAFIDS_CACHE_NAME = "autoafids-0.1.4-py3-none-any.zip"
#: (member of the wheel, SHA256): the T1 template and the AFIDs raters' mean on it (.fcsv, RAS).
HUMAN_FILES = (
    (
        "autoafids/resources/tpl-MNI152NLin2009cAsym_res-01_T1w.nii.gz",
        "1f27aabea9f7183dc0c69dafa71e1787b921ca778d655d9c1bf302b273d5627a",
    ),
    (
        "autoafids/resources/tpl-MNI152NLin2009cAsym_res-01_desc-groundtruth_afids.fcsv",
        "8290b044e4198acf732700473db113985784cc6f0205534d88a38422fb94d4c0",
    ),
)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def extractHumanTemplate(wheel: Path, folder: Path) -> list[Path]:
    """The T1 and AFIDs files taken out of the autoafids wheel into ``folder``, checksums verified."""
    paths = []
    try:
        with zipfile.ZipFile(wheel) as archive:
            for member, sha256 in HUMAN_FILES:
                path = Path(folder) / Path(member).name
                if not path.is_file() or _sha256(path) != sha256:
                    write_bytes_atomic(path, archive.read(member))
                if _sha256(path) != sha256:
                    raise InputError(f"sample file '{member}' of '{wheel}'", "has a different checksum")
                paths.append(path)
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise InputError(f"sample archive '{wheel}'", f"cannot be read ({exc})") from None
    return paths


def loadHumanTemplate(wheel: Path | None = None, scene: Any = None) -> tuple[Any, Any]:
    """(T1 volume node, AFIDs markups node) of the MNI152 template; downloads the wheel when not given."""
    from LandmarkCoreLib.images import read_image
    from LandmarkCoreLib.landmarks import read_landmarks
    from LandmarkSlicerLib.mrml_bridge import image_to_volume_node, landmarks_to_markups_node

    if wheel is None:
        import SampleData

        wheel = SampleData.SampleDataLogic().downloadFileIntoCache(
            AUTOAFIDS_WHEEL, AUTOAFIDS_CACHE_NAME, f"SHA256:{AUTOAFIDS_WHEEL_SHA256}"
        )
    wheel = Path(wheel)
    volume, fiducials = extractHumanTemplate(wheel, wheel.parent)
    if scene is None:
        import slicer

        scene = slicer.mrmlScene
    volumeNode = image_to_volume_node(read_image(volume, "MNI152 T1"), scene, HUMAN_SAMPLE)
    landmarks = read_landmarks(fiducials, "AFIDs")
    return volumeNode, landmarks_to_markups_node(landmarks, scene, f"{HUMAN_SAMPLE} landmarks")


def _thumbnail() -> str:
    return os.path.join(os.path.dirname(os.path.dirname(__file__)), "Resources/Icons/OneShotLandmarks.png")


def registerSampleData() -> None:
    """Register the mouse skull micro-CT subjects (volume + landmarks) and the human template with the
    Sample Data module."""
    import SampleData

    thumbnail = _thumbnail()
    for name, volume, volume_sha, landmarks, landmarks_sha in MOUSE_SAMPLES:
        SampleData.SampleDataLogic.registerCustomSampleDataSource(
            category="Landmark Detection",
            sampleName=name,
            thumbnailFileName=thumbnail,
            uris=[f"{MOUSE_ATLAS_RAW}/{volume}", f"{MOUSE_ATLAS_RAW}/{landmarks}"],
            fileNames=[f"{name}.nii.gz", f"{name}.mrk.json"],
            checksums=[f"SHA256:{volume_sha}", f"SHA256:{landmarks_sha}"],
            nodeNames=[name, f"{name} landmarks"],
            loadFileTypes=["VolumeFile", "MarkupsFile"],
        )
    SampleData.SampleDataLogic.registerCustomSampleDataSource(
        category="Landmark Detection",
        sampleName=HUMAN_SAMPLE,
        thumbnailFileName=thumbnail,
        uris=[AUTOAFIDS_WHEEL],
        fileNames=[AUTOAFIDS_CACHE_NAME],
        checksums=[f"SHA256:{AUTOAFIDS_WHEEL_SHA256}"],
        loadFileTypes=["ZipFile"],
        customDownloader=lambda source: loadHumanTemplate(),
    )
