"""Landmark files: round trips in both coordinate systems, legacy headers, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from LandmarkCoreLib.errors import InputError
from LandmarkCoreLib.landmarks import LandmarkSet, read_landmarks, write_landmarks

POINTS = np.array([[1.25, -2.5, 3.125], [-10.0, 20.333333333, -30.5], [0.1, 0.2, 0.3]])


def _landmarks() -> LandmarkSet:
    return LandmarkSet(["a", "b", "c"], POINTS.copy(), ["first", "second, with comma", ""], "case")


@pytest.mark.parametrize("ext", [".mrk.json", ".fcsv", ".csv"])
def test_round_trip_keeps_labels_and_positions(tmp_path, ext):
    path = tmp_path / f"case{ext}"
    write_landmarks(path, _landmarks())
    back = read_landmarks(path)
    assert back.labels == ["a", "b", "c"]
    np.testing.assert_allclose(back.points, POINTS, atol=1e-12)
    assert back.name == "case"
    if ext != ".csv":
        assert back.descriptions == ["first", "second, with comma", ""]


def test_written_json_is_lps_in_slicer_schema(tmp_path):
    path = tmp_path / "x.mrk.json"
    write_landmarks(path, _landmarks())
    markup = json.loads(path.read_text())["markups"][0]
    assert markup["type"] == "Fiducial" and markup["coordinateSystem"] == "LPS"
    assert markup["controlPoints"][1]["position"] == pytest.approx(POINTS[1].tolist())


def _json_with_system(system: str, position: list[float]) -> str:
    point = {"label": "p", "position": position, "positionStatus": "defined"}
    return json.dumps(
        {"markups": [{"type": "Fiducial", "coordinateSystem": system, "controlPoints": [point]}]}
    )


@pytest.mark.parametrize("system, expected", [("LPS", [1.0, 2.0, 3.0]), ("RAS", [-1.0, -2.0, 3.0])])
def test_json_coordinate_system_is_honoured(tmp_path, system, expected):
    path = tmp_path / "p.mrk.json"
    path.write_text(_json_with_system(system, [1.0, 2.0, 3.0]))
    np.testing.assert_allclose(read_landmarks(path).points, [expected])


def test_json_ras_file_round_trips_to_same_physical_point(tmp_path):
    ras = tmp_path / "ras.mrk.json"
    ras.write_text(_json_with_system("RAS", [5.0, -6.0, 7.0]))
    first = read_landmarks(ras)
    write_landmarks(tmp_path / "lps.mrk.json", first)
    np.testing.assert_allclose(read_landmarks(tmp_path / "lps.mrk.json").points, [[-5.0, 6.0, 7.0]])


@pytest.mark.parametrize(
    "header, expected",
    [
        ("# CoordinateSystem = LPS", [1.0, 2.0, 3.0]),
        ("# CoordinateSystem = 1", [1.0, 2.0, 3.0]),
        ("# CoordinateSystem = RAS", [-1.0, -2.0, 3.0]),
        ("# CoordinateSystem = 0", [-1.0, -2.0, 3.0]),
        ("", [-1.0, -2.0, 3.0]),  # legacy files without the line are RAS
    ],
)
def test_fcsv_coordinate_system_headers(tmp_path, header, expected):
    path = tmp_path / "p.fcsv"
    path.write_text(
        "# Markups fiducial file version = 4.6\n"
        f"{header}\n"
        "# columns = id,x,y,z,ow,ox,oy,oz,vis,sel,lock,label,desc,associatedNodeID\n"
        "vtkMRMLMarkupsFiducialNode_0,1,2,3,0,0,0,1,1,1,0,F-1,desc one,vtkMRMLScalarVolumeNode1\n"
    )
    back = read_landmarks(path)
    assert back.labels == ["F-1"] and back.descriptions == ["desc one"]
    np.testing.assert_allclose(back.points, [expected])


def test_fcsv_round_trip_of_ras_file_keeps_physical_position(tmp_path):
    path = tmp_path / "ras.fcsv"
    path.write_text("# CoordinateSystem = RAS\nid0,4,5,6,0,0,0,1,1,1,0,L,,\n")
    write_landmarks(tmp_path / "out.fcsv", read_landmarks(path))
    assert "CoordinateSystem = LPS" in (tmp_path / "out.fcsv").read_text()
    np.testing.assert_allclose(read_landmarks(tmp_path / "out.fcsv").points, [[-4.0, -5.0, 6.0]])


def test_csv_2d_with_and_without_header(tmp_path):
    (tmp_path / "h.csv").write_text("label,x,y\nnose,10.5,20\neye,1,2\n")
    (tmp_path / "n.csv").write_text("nose,10.5,20\neye,1,2\n")
    for name in ("h.csv", "n.csv"):
        back = read_landmarks(tmp_path / name)
        assert back.dim == 2 and back.labels == ["nose", "eye"]
        np.testing.assert_allclose(back.points, [[10.5, 20], [1, 2]])


def test_2d_set_written_to_json_has_z0_and_reads_back_as_2d(tmp_path):
    flat = LandmarkSet(["1", "2"], [[3.0, 4.0], [5.0, 6.0]])
    write_landmarks(tmp_path / "f.mrk.json", flat)
    np.testing.assert_allclose(read_landmarks(tmp_path / "f.mrk.json").points[:, 2], 0.0)
    np.testing.assert_allclose(read_landmarks(tmp_path / "f.mrk.json", dimension=2).points, flat.points)


def test_missing_point_is_nan_and_survives_round_trip(tmp_path):
    lms = LandmarkSet(["a", "b"], [[1.0, 2.0, 3.0], [np.nan, np.nan, np.nan]])
    write_landmarks(tmp_path / "m.mrk.json", lms)
    back = read_landmarks(tmp_path / "m.mrk.json")
    assert np.isnan(back.points[1]).all() and not np.isnan(back.points[0]).any()


def test_subset_and_index():
    lms = _landmarks()
    assert lms.index("b") == 1 and len(lms) == 3 and lms.dim == 3
    sub = lms.subset(["c", "a"])
    assert sub.labels == ["c", "a"] and sub.descriptions == ["", "first"]
    np.testing.assert_allclose(sub.points, POINTS[[2, 0]])
    with pytest.raises(InputError, match="no landmark labelled 'zz'"):
        lms.index("zz")


def test_invalid_sets_are_refused():
    with pytest.raises(InputError, match="2 labels for 3 points"):
        LandmarkSet(["a", "b"], POINTS)
    with pytest.raises(InputError, match="not unique"):
        LandmarkSet(["a", "a", "b"], POINTS)


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(InputError, match=r"template landmarks '.*nope\.mrk\.json': file does not exist"):
        read_landmarks(tmp_path / "nope.mrk.json", what="template landmarks")


def test_json_without_control_points_names_the_file(tmp_path):
    path = tmp_path / "empty.mrk.json"
    path.write_text(
        json.dumps({"markups": [{"type": "Fiducial", "coordinateSystem": "LPS", "controlPoints": []}]})
    )
    with pytest.raises(InputError, match=r"empty\.mrk\.json'?: contains no control points"):
        read_landmarks(path)


@pytest.mark.parametrize("content", ["{not json", '{"markups": []}', "[1, 2]"])
def test_malformed_json_names_the_file(tmp_path, content):
    path = tmp_path / "bad.mrk.json"
    path.write_text(content)
    with pytest.raises(InputError, match=r"bad\.mrk\.json'?: not a Slicer markups JSON"):
        read_landmarks(path)


def test_unknown_extension_and_bad_csv(tmp_path):
    with pytest.raises(InputError, match="unknown landmark file type"):
        read_landmarks(tmp_path / "x.txt")
    (tmp_path / "bad.csv").write_text("a,1\n")
    with pytest.raises(InputError, match=r"bad\.csv"):
        read_landmarks(tmp_path / "bad.csv")
