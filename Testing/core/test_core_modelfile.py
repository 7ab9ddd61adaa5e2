"""Model files (weights_only, checksum, kind) and atomic writes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from LandmarkCoreLib.atomic import atomic_path, write_bytes_atomic, write_text_atomic
from LandmarkCoreLib.errors import ModelFileError
from LandmarkCoreLib.modelfile import ModelFile, load_model_file, save_model_file


def _model() -> ModelFile:
    torch.manual_seed(0)
    return ModelFile(
        kind="oneshot-model",
        config={"channels": [8, 16], "sigma": 2.5, "labels": ["1", "2"], "note": None},
        tensors={
            "state": {"conv.weight": torch.randn(4, 2, 3, 3), "conv.bias": torch.zeros(4)},
            "template_points": np.arange(6, dtype=np.float64).reshape(2, 3),
            "history": [torch.tensor(1.5), 3, "epoch"],
        },
    )


def test_round_trip_keeps_config_and_tensors(tmp_path):
    path = tmp_path / "model.pt"
    save_model_file(path, _model())
    back = load_model_file(path, expected_kind="oneshot-model")
    assert back.kind == "oneshot-model" and back.config == _model().config
    torch.testing.assert_close(back.tensors["state"]["conv.weight"], _model().tensors["state"]["conv.weight"])
    np.testing.assert_array_equal(back.tensors["template_points"].numpy(), np.arange(6.0).reshape(2, 3))
    assert back.tensors["history"][1:] == [3, "epoch"]
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_kind_tuple_accepts_any_listed_kind(tmp_path):
    save_model_file(tmp_path / "ckpt.pt", ModelFile("oneshot-checkpoint", {}, {}))
    assert (
        load_model_file(tmp_path / "ckpt.pt", ("oneshot-model", "oneshot-checkpoint")).kind
        == "oneshot-checkpoint"
    )


def test_wrong_kind_is_refused_naming_both(tmp_path):
    save_model_file(tmp_path / "knee.pt", ModelFile("knee-model", {}, {"w": torch.ones(2)}))
    with pytest.raises(ModelFileError, match=r"knee\.pt'?: it is a 'knee-model' file, but a 'oneshot-model'"):
        load_model_file(tmp_path / "knee.pt", "oneshot-model")


def test_truncated_and_corrupt_files_are_refused(tmp_path):
    path = tmp_path / "model.pt"
    save_model_file(path, _model())
    data = path.read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match=r"truncated\.pt'?: not a readable model file"):
        load_model_file(tmp_path / "truncated.pt")
    (tmp_path / "noise.pt").write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ModelFileError, match=r"noise\.pt'?: not a readable model file"):
        load_model_file(tmp_path / "noise.pt")


def test_checksum_mismatch_is_detected(tmp_path):
    path = tmp_path / "model.pt"
    save_model_file(path, _model())
    payload = torch.load(path, weights_only=True)
    payload["tensors"]["state"]["conv.bias"][0] = 1.0  # tampered weights, old checksum
    torch.save(payload, path)
    with pytest.raises(ModelFileError, match="checksum mismatch"):
        load_model_file(path)


class _Payload:
    """A pickle that would run code when loaded without weights_only."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (_touch, (str(self.marker),))


def _touch(path: str) -> None:
    open(path, "w").close()


def test_foreign_pickle_with_code_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "code_ran"
    torch.save({"format": "x", "model": _Payload(marker)}, tmp_path / "evil.pt")
    with pytest.raises(ModelFileError, match=r"evil\.pt'?: not a readable model file"):
        load_model_file(tmp_path / "evil.pt")
    assert not marker.exists()


def test_plain_state_dict_and_missing_file_are_refused(tmp_path):
    torch.save({"weight": torch.ones(3)}, tmp_path / "state_dict.pt")
    with pytest.raises(ModelFileError, match="not a model file of this extension"):
        load_model_file(tmp_path / "state_dict.pt")
    with pytest.raises(ModelFileError, match=r"absent\.pt'?: does not exist"):
        load_model_file(tmp_path / "absent.pt")


def test_atomic_write_replaces_whole_file(tmp_path):
    path = tmp_path / "sub" / "out.txt"
    write_text_atomic(path, "first")
    write_text_atomic(path, "second")
    write_bytes_atomic(tmp_path / "b.bin", b"\x00\x01")
    assert path.read_text() == "second" and (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert [p.name for p in path.parent.iterdir()] == ["out.txt"]


def test_failed_atomic_write_keeps_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "table.nii.gz"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        assert tmp.name.endswith(".nii.gz") and tmp.parent == tmp_path
        tmp.write_text("half written")
        raise RuntimeError("crash mid-write")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["table.nii.gz"]
