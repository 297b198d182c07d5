"""Checkpoints: one typed record, opened without running code, read across versions."""
from __future__ import annotations

import pickle

import pytest
import torch

from nanogfl.checkpoint import Checkpoint, CheckpointError, load_model, read_checkpoint, save_checkpoint
from nanogfl.cli import main
from nanogfl.config import Config
from nanogfl.model import nanodet_plus_m


class RunsCode:
    """A pickle that calls a function when it is loaded: what a malicious .pt does."""

    def __reduce__(self):
        return (exec, ("open(__import__('os').environ['NANOGFL_PWNED'], 'w').write('ran')",))


def test_a_pickle_that_would_run_code_is_refused_and_nothing_runs(tmp_path, monkeypatch, capsys):
    marker = tmp_path / "pwned"
    monkeypatch.setenv("NANOGFL_PWNED", str(marker))
    evil = tmp_path / "evil.pt"
    torch.save({"format": "nanogfl-checkpoint", "model": {}, "config": {}, "class_names": [], "x": RunsCode()},
               evil)
    with pytest.raises(CheckpointError, match="evil.pt: refused: .*could run code"):
        read_checkpoint(evil)
    assert main(["info", "--model", str(evil)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "refused" in err
    assert not marker.exists()
    with open(evil, "rb") as f:  # the file really does run code when unpickled without the guard
        assert b"exec" in f.read()
    pickle.loads(pickle.dumps(RunsCode()))
    assert marker.read_text() == "ran"


def test_round_trip_and_explicit_aux_field(tmp_path):
    model = nanodet_plus_m(num_classes=3)
    path = tmp_path / "m.pt"
    save_checkpoint(path, Checkpoint(model=model.state_dict(), config=Config().to_dict(), class_names=["a", "b", "c"],
                                     aux_trained=False, source="official.param"))
    checkpoint = read_checkpoint(path)
    assert checkpoint.aux_trained is False and checkpoint.source == "official.param" and checkpoint.version == 2
    loaded, cfg, names = load_model(path, with_aux=True)
    assert names == ["a", "b", "c"] and cfg.model.arch == "nanodet-plus-m"
    torch.testing.assert_close(loaded.state_dict(), model.state_dict())


def test_version_1_checkpoints_still_load(tmp_path):
    """The layout before the typed record: no aux_trained, an "imported_from" key, model.reg_max in the config."""
    model = nanodet_plus_m(num_classes=2, with_aux=False)
    config = Config().to_dict()
    config["model"] = {"arch": "nanodet-plus-m", "input_size": [320, 320], "reg_max": 7, "detach_epoch": 10,
                       "assign_guidance": "auto"}
    path = tmp_path / "v1.pt"
    torch.save({"format": "nanogfl-checkpoint", "version": 1, "model": model.state_dict(), "config": config,
                "class_names": ["a", "b"], "imported_from": "x.param"}, path)
    checkpoint = read_checkpoint(path)
    assert checkpoint.version == 1 and checkpoint.aux_trained is False and checkpoint.source == "x.param"
    with pytest.warns(UserWarning, match="model.reg_max is now model.head.reg_max"):
        loaded, cfg, _ = load_model(path)
    assert cfg.model.head.reg_max == 7
    torch.testing.assert_close(loaded.state_dict(), model.state_dict())


def test_a_newer_checkpoint_version_is_a_clear_error(tmp_path):
    path = tmp_path / "future.pt"
    torch.save({"format": "nanogfl-checkpoint", "version": 99, "model": {}, "config": {}, "class_names": []}, path)
    with pytest.raises(CheckpointError, match="version 99 is newer"):
        read_checkpoint(path)
