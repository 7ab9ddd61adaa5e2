"""Model files (weights_only, checksum, kind, range check on load, description) and atomic writes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from LandmarkCoreLib.atomic import atomic_path, write_bytes_atomic, write_text_atomic
from LandmarkCoreLib.errors import InputError, ModelFileError
from LandmarkCoreLib.modelfile import (
    ModelFile,
    ModelKind,
    describe_model_file,
    load_model_file,
    register_kind,
    save_model_file,
)
from LandmarkCoreLib.settings import setting, settings_from_dict


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


@dataclass
class _Iterations:
    iterations: int = setting(10, minimum=1, maximum=1000, help="iterations")


def _check_iterations(model: ModelFile) -> None:
    settings_from_dict(_Iterations, model.config["detection"], "detection")


TEST_KIND = register_kind(
    ModelKind(
        "test-model",
        "TestModule",
        _check_iterations,
        lambda m: f"{m.config['detection']['iterations']} steps",
    )
)


def test_every_load_range_checks_the_config_naming_file_and_value(tmp_path):
    save_model_file(tmp_path / "ok.pt", ModelFile(TEST_KIND, {"detection": {"iterations": 1000}}))
    assert load_model_file(tmp_path / "ok.pt", TEST_KIND).config["detection"]["iterations"] == 1000
    assert describe_model_file(tmp_path / "ok.pt") == "TestModule 'test-model' file: 1000 steps"
    crafted = [
        ({"iterations": 10**12}, r"'iterations': must be in \[1, 1000\], got 1000000000000"),
        ({"iterations": float("nan")}, "'iterations': must be an integer, got nan"),
        ({"loops": 3}, "unknown settings loops"),
    ]
    for values, message in crafted:
        save_model_file(tmp_path / "bad.pt", ModelFile(TEST_KIND, {"detection": values}))  # valid checksum
        with pytest.raises(ModelFileError, match=r"bad\.pt'?: detection" + ".*" + message):
            load_model_file(tmp_path / "bad.pt", TEST_KIND)
    save_model_file(tmp_path / "empty.pt", ModelFile(TEST_KIND, {}))
    with pytest.raises(ModelFileError, match="incomplete test-model configuration"):
        load_model_file(tmp_path / "empty.pt")


def test_range_check_errors_are_model_file_errors_not_input_errors(tmp_path):
    save_model_file(tmp_path / "bad.pt", ModelFile(TEST_KIND, {"detection": {"iterations": 0}}))
    with pytest.raises(ModelFileError) as excinfo:
        load_model_file(tmp_path / "bad.pt")
    assert not isinstance(excinfo.value, InputError)


def test_an_undeclared_kind_is_described_as_such(tmp_path):
    save_model_file(tmp_path / "x.pt", ModelFile("unknown-model", {}))
    assert describe_model_file(tmp_path / "x.pt") == "'unknown-model' file (of a module that is not loaded)"
