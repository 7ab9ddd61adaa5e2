"""The files a web session may read: nothing outside the data folder, uploads size-limited and typed."""

from __future__ import annotations

import pytest
from LandmarkCoreLib.errors import InputError
from LandmarkWebLib.files import DataFolder, Uploads


def test_data_folder_refuses_paths_outside_it(tmp_path):
    root = tmp_path / "data"
    (root / "images").mkdir(parents=True)
    (root / "images" / "a.nii.gz").write_bytes(b"x")
    (tmp_path / "secret.nii.gz").write_bytes(b"s")
    (root / "images" / "link.nii.gz").symlink_to(tmp_path / "secret.nii.gz")
    folder = DataFolder(root)
    assert folder.path("images/a.nii.gz", "volume") == (root / "images" / "a.nii.gz").resolve()
    for name in ("../secret.nii.gz", str(tmp_path / "secret.nii.gz"), "images/link.nii.gz", "images"):
        with pytest.raises(InputError, match="is not a file of the data folder"):
            folder.path(name, "volume")


def test_uploads_are_size_limited_and_typed(tmp_path):
    uploads = Uploads(limit_bytes=10)
    path = uploads.save({"name": "../../x y.jpg", "size": 3, "content": b"abc"}, (".jpg",), "image")
    assert path.name == "x_y.jpg" and path.read_bytes() == b"abc"
    with pytest.raises(InputError, match="larger than"):
        uploads.save({"name": "big.jpg", "size": 11, "content": b"a" * 11}, (".jpg",), "image")
    with pytest.raises(InputError, match="is not one of"):
        uploads.save({"name": "a.exe", "size": 1, "content": b"a"}, (".jpg",), "image")
