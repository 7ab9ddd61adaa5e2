"""Sample data: a YouTube-Faces frame with its 68 points, from github.com/alexandrenpl/P1_Facial_Keypoints."""

from __future__ import annotations

import os

FACES_RAW = "https://raw.githubusercontent.com/alexandrenpl/P1_Facial_Keypoints/4dd79c5330d3a8686b796898ee3d25c0562e75d3"
SAMPLE_NAME = "FacePhotoAbdelAzizAlHakim"
PHOTO = (
    "data/test/Abdel_Aziz_Al-Hakim_01.jpg",
    "02a05af129af15b902fb49fbe1e36d3413c6931a0474974fa45d2352804b8a80",
)
KEYPOINTS = (
    "data/test_frames_keypoints.csv",
    "d2ccefad7e8b4086fe761397f1e2206e8006027f235dc7b8cd929377ae643083",
)


def registerSampleData() -> None:
    """Register the photograph (loaded as one 2D image) with the Sample Data module."""
    import SampleData

    SampleData.SampleDataLogic.registerCustomSampleDataSource(
        category="Landmark Detection",
        sampleName=SAMPLE_NAME,
        thumbnailFileName=os.path.join(
            os.path.dirname(os.path.dirname(__file__)), "Resources/Icons/FaceLandmarks.png"
        ),
        uris=[f"{FACES_RAW}/{PHOTO[0]}"],
        fileNames=[os.path.basename(PHOTO[0])],
        checksums=[f"SHA256:{PHOTO[1]}"],
        nodeNames=[SAMPLE_NAME],
        loadFileTypes=["VolumeFile"],
        loadFileProperties={"singleFile": True},  # the frame's numbered siblings are other photographs
    )


def downloadKeypoints() -> str:
    """The keypoint table of the test frames (ground truth of the sample), downloaded into the cache."""
    import SampleData

    return SampleData.SampleDataLogic().downloadFileIntoCache(
        f"{FACES_RAW}/{KEYPOINTS[0]}", os.path.basename(KEYPOINTS[0]), f"SHA256:{KEYPOINTS[1]}"
    )
