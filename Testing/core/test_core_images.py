"""Image I/O and physical <-> index geometry."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from LandmarkCoreLib.errors import InputError
from LandmarkCoreLib.images import (
    image_stem,
    index_to_physical,
    physical_to_index,
    points_inside,
    read_image,
    to_scalar,
    write_image,
)


def oblique_volume() -> sitk.Image:
    """A small volume with non-identity direction, origin and anisotropic spacing."""
    image = sitk.GetImageFromArray(np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6))
    rotation = sitk.VersorTransform((0.2, -0.4, 0.9), 0.7).GetMatrix()
    image.SetDirection(rotation)
    image.SetOrigin((-12.5, 30.0, 7.25))
    image.SetSpacing((0.5, 1.5, 2.0))
    return image


def test_index_to_physical_matches_simpleitk():
    image = oblique_volume()
    indices = np.array([[0, 0, 0], [5, 4, 3], [1.5, 2.25, 0.5]])
    expected = [image.TransformContinuousIndexToPhysicalPoint(tuple(i)) for i in indices]
    np.testing.assert_allclose(index_to_physical(image, indices), expected, atol=1e-10)
    np.testing.assert_allclose(physical_to_index(image, np.array(expected)), indices, atol=1e-10)


def test_2d_geometry_is_column_row_times_spacing():
    image = sitk.Image(40, 30, sitk.sitkUInt8)
    image.SetSpacing((0.1, 0.1))
    np.testing.assert_allclose(index_to_physical(image, np.array([[10.0, 20.0]])), [[1.0, 2.0]])
    assert points_inside(image, np.array([[1.0, 2.0], [4.5, 0.0]])).tolist() == [True, False]


def test_wrong_point_dimension_is_refused():
    with pytest.raises(InputError, match=r"expected an \(N, 3\) array"):
        physical_to_index(oblique_volume(), np.zeros((2, 2)))


@pytest.mark.parametrize("ext", [".nrrd", ".nii.gz", ".mha"])
def test_volume_round_trip_keeps_geometry_and_voxels(tmp_path, ext):
    image = oblique_volume()
    write_image(tmp_path / f"v{ext}", image)
    back = read_image(tmp_path / f"v{ext}", dimension=3)
    np.testing.assert_allclose(back.GetDirection(), image.GetDirection(), atol=1e-6)
    np.testing.assert_allclose(back.GetOrigin(), image.GetOrigin(), atol=1e-6)
    np.testing.assert_allclose(back.GetSpacing(), image.GetSpacing(), atol=1e-6)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(image))
    assert [p.name for p in tmp_path.iterdir()] == [f"v{ext}"]  # no temporary file left behind


@pytest.mark.parametrize("ext", [".png", ".jpg", ".tif"])
def test_2d_rgb_images_read(tmp_path, ext):
    rgb = np.zeros((30, 40, 3), dtype=np.uint8)
    rgb[5:10, 20:30] = (200, 100, 50)
    write_image(tmp_path / f"p{ext}", sitk.GetImageFromArray(rgb, isVector=True))
    image = read_image(tmp_path / f"p{ext}", dimension=2)
    assert image.GetSize() == (40, 30) and image.GetNumberOfComponentsPerPixel() == 3
    scalar = sitk.GetArrayFromImage(to_scalar(image))
    assert scalar.shape == (30, 40) and scalar[7, 25] == pytest.approx(350 / 3, abs=8)  # JPEG is lossy


def write_dicom_series(volume: sitk.Image, folder, skip: tuple[int, ...] = ()) -> None:
    """One .dcm file per slice of ``volume`` (identity direction), leaving out the slices in ``skip``."""
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for z in range(volume.GetDepth()):
        if z in skip:
            continue
        slice_ = volume[:, :, z]
        origin = volume.TransformIndexToPhysicalPoint((0, 0, z))
        for key, value in {
            "0020|000e": "1.2.826.0.1.3680043.2.1125.1",
            "0020|0013": str(z + 1),
            "0020|0032": "\\".join(map(str, origin)),
            "0020|0037": "1\\0\\0\\0\\1\\0",
            "0028|0030": "1.5\\0.5",
            "0018|0050": "2.0",
            "0008|0060": "CT",
        }.items():
            slice_.SetMetaData(key, value)
        writer.SetFileName(str(folder / f"s{z:02d}.dcm"))
        writer.Execute(slice_)


def test_dicom_series_folder_reads_as_volume(tmp_path):
    volume = sitk.Cast(oblique_volume(), sitk.sitkInt16)
    volume.SetDirection((1, 0, 0, 0, 1, 0, 0, 0, 1))
    write_dicom_series(volume, tmp_path)
    back = read_image(tmp_path, dimension=3)
    assert back.GetSize() == volume.GetSize()
    np.testing.assert_allclose(back.GetSpacing(), volume.GetSpacing(), atol=1e-4)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(volume))


def test_dicom_series_with_a_missing_slice_is_refused(tmp_path):
    volume = sitk.Image(6, 5, 8, sitk.sitkInt16)
    volume.SetSpacing((0.5, 1.5, 2.0))
    write_dicom_series(volume, tmp_path, skip=(4,))
    with pytest.raises(InputError, match=r"steps 2-4 mm, typical 2 mm\): slices are missing"):
        read_image(tmp_path, dimension=3)


def _truncate(path, keep: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


@pytest.mark.parametrize("name", ["v.nii.gz", "v.nii"])
def test_truncated_nifti_is_refused(tmp_path, name):
    rng = np.random.default_rng(0)
    write_image(tmp_path / name, sitk.GetImageFromArray(rng.normal(size=(20, 20, 20)).astype(np.float32)))
    _truncate(tmp_path / name, 0.7)
    with pytest.raises(InputError, match=rf"{name}'?: (compressed file is truncated|file is truncated)"):
        read_image(tmp_path / name)


def test_nan_in_nifti_is_refused_though_itk_reads_it_as_zero(tmp_path):
    array = np.ones((4, 5, 6), dtype=np.float32)
    array[1, 2, 3] = np.nan
    array[2, 2, 2] = np.inf
    write_image(tmp_path / "nan.nii.gz", sitk.GetImageFromArray(array))
    with pytest.raises(InputError, match=r"nan\.nii\.gz'?: contains 2 NaN or infinite voxel values"):
        read_image(tmp_path / "nan.nii.gz")


@pytest.mark.parametrize("name", ["photo.jpg", "photo.png"])
def test_truncated_photographs_are_refused(tmp_path, name):
    rng = np.random.default_rng(1)
    photo = sitk.GetImageFromArray(rng.integers(0, 255, (64, 80)).astype(np.uint8))
    sitk.WriteImage(photo, str(tmp_path / name))
    assert read_image(tmp_path / name).GetSize() == (80, 64)
    _truncate(tmp_path / name, 0.6)
    with pytest.raises(InputError, match=rf"{name}'?: (JPEG|PNG) file is truncated"):
        read_image(tmp_path / name)


def test_image_stem_strips_only_the_image_suffix():
    assert image_stem("a/skull.nii.gz") == "skull"
    assert image_stem("pat.visit1.jpg") == "pat.visit1"
    assert image_stem("scan.mhd") == "scan"
    assert image_stem("series_folder") == "series_folder"


def test_single_slice_volume_becomes_2d_or_is_refused_as_3d(tmp_path):
    flat = sitk.Image(20, 10, 1, sitk.sitkUInt8)
    flat.SetSpacing((0.2, 0.3, 1.0))
    write_image(tmp_path / "flat.nrrd", flat)
    two_d = read_image(tmp_path / "flat.nrrd", dimension=2)
    assert two_d.GetDimension() == 2 and two_d.GetSpacing() == pytest.approx((0.2, 0.3))
    with pytest.raises(InputError, match=r"flat\.nrrd'?: is a 2D image .* 3D volume is needed"):
        read_image(tmp_path / "flat.nrrd", dimension=3)


def test_2d_file_where_3d_is_needed_names_the_file(tmp_path):
    write_image(tmp_path / "photo.png", sitk.Image(8, 8, sitk.sitkUInt8))
    with pytest.raises(InputError, match=r"photo\.png'?: is a 2D image"):
        read_image(tmp_path / "photo.png", what="input volume", dimension=3)


def test_missing_and_unreadable_files_name_the_file(tmp_path):
    with pytest.raises(InputError, match=r"input volume '.*absent\.nrrd': file does not exist"):
        read_image(tmp_path / "absent.nrrd", what="input volume")
    (tmp_path / "fake.png").write_text("this is not a PNG")
    with pytest.raises(InputError, match=r"fake\.png'?: not a readable image"):
        read_image(tmp_path / "fake.png")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no DICOM series"):
        read_image(tmp_path / "empty")


def test_nan_in_float_image_is_refused(tmp_path):
    array = np.ones((3, 4, 5), dtype=np.float32)
    array[1, 2, 3] = np.nan
    write_image(tmp_path / "nan.nrrd", sitk.GetImageFromArray(array))
    with pytest.raises(InputError, match=r"nan\.nrrd'?: contains NaN"):
        read_image(tmp_path / "nan.nrrd")
