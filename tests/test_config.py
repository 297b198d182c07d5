from pathlib import Path

import pytest

from nanogfl.config import ConfigError, load_config
from nanogfl.contract import ARCH_NAMES

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_load(path):
    cfg = load_config(path)
    assert cfg.model.arch in ARCH_NAMES
    assert cfg.input_hw[0] % 32 == 0


def test_required_configs_exist():
    names = {p.name for p in CONFIGS}
    for required in ("nanodet-plus-m_320.yml", "nanodet-plus-m_416.yml", "nanodet-plus-m-1.5x_320.yml",
                     "nanodet-plus-m-1.5x_416.yml", "nanodet-m_320.yml", "nanodet-m_416.yml",
                     "nanodet-plus-m-gflv2_320.yml", "nanodet-plus-m-gflv2_416.yml"):
        assert required in names


def test_overrides_and_errors(tmp_path):
    cfg = load_config(CONFIGS[0], ["train.epochs=7", "model.input_size=[256, 320]", "train.amp=false"])
    assert cfg.train.epochs == 7 and cfg.input_hw == (256, 320) and cfg.train.amp is False
    with pytest.raises(ConfigError, match="unknown key 'epoch' in train; valid keys: epochs"):
        load_config(CONFIGS[0], ["train.epoch=3"])
    with pytest.raises(ConfigError, match="train.lr: expected float"):
        load_config(CONFIGS[0], ["train.lr=fast"])
    typo = tmp_path / "typo.yml"
    typo.write_text("model:\n  archh: nanodet-plus-m\n")
    with pytest.raises(ConfigError, match=r"typo.yml: .*unknown key 'archh'.*valid keys: arch"):
        load_config(typo)
    bad_size = tmp_path / "size.yml"
    bad_size.write_text("model:\n  input_size: [300, 320]\n")
    with pytest.raises(ConfigError, match="multiples of 32"):
        load_config(bad_size)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yml")


@pytest.mark.parametrize("override, words", [
    ("model.arch=foo", "model.arch: 'foo' is not one of nanodet-plus-m, nanodet-plus-m-1.5x, nanodet-plus-m-0.5x"),
    ("model.input_size=[320]", "model.input_size must be (height, width), got [320]"),
    ("model.assign_guidance=aux2", "model.assign_guidance: 'aux2' is not one of auto, aux, main"),
    ("data.train.format=csv", "data.train.format: 'csv' is not one of coco, voc, yolo"),
    ("model.backbone.width=0.7", "model.backbone.width: 0.7 is not one of 0.5, 1.0, 1.5, 2.0"),
    ("model.neck.name=bifpn", "model.neck.name: 'bifpn' is not one of ghost_pan, pan, fpn"),
])
def test_closed_values_are_one_line_errors(override, words, capsys):
    with pytest.raises(ConfigError) as error:
        load_config(CONFIGS[0], [override])
    assert words in str(error.value) and "\n" not in str(error.value)
    from nanogfl.cli import main

    assert main(["info", str(CONFIGS[0]), "--json"]) == 0  # the shipped config itself is fine
    capsys.readouterr()


def test_arch_fills_the_parts_and_sections_override_them(tmp_path):
    path = tmp_path / "wide.yml"
    path.write_text("model:\n  arch: nanodet-plus-m-1.5x\n  neck: {channels: 64}\n")
    cfg = load_config(path)
    assert cfg.model.backbone.width == 1.5 and cfg.model.neck.channels == 64 and cfg.model.head.reg_max == 7


def test_retired_keys_of_old_checkpoints_are_migrated_with_a_note():
    from nanogfl.config import config_from_dict

    old = {"model": {"arch": "nanodet-plus-m-1.5x", "input_size": [416, 416], "reg_max": 7, "detach_epoch": 10}}
    with pytest.warns(UserWarning, match="model.reg_max is now model.head.reg_max"):
        cfg = config_from_dict(old, "old.pt", migrate=True)
    assert cfg.model.head.reg_max == 7 and cfg.model.neck.channels == 128
    with pytest.raises(ConfigError, match="unknown key 'reg_max'"):
        config_from_dict(old, "new.yml")  # a config file written today must use the current keys
