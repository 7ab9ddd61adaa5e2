"""Sample data: public mouse skull micro-CT subjects of github.com/muratmaga/mouse_CT_atlas."""

from __future__ import annotations

import os

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


def registerSampleData() -> None:
    """Register the mouse skull micro-CT subjects (volume + landmarks) with the Sample Data module."""
    import SampleData

    thumbnail = os.path.join(
        os.path.dirname(os.path.dirname(__file__)), "Resources/Icons/OneShotLandmarks.png"
    )
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
