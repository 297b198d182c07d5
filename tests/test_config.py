from pathlib import Path

import pytest

from nanogfl.config import ConfigError, load_config

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_load(path):
    cfg = load_config(path)
    assert cfg.model.arch.startswith("nanodet-plus-m")
    assert cfg.input_hw[0] % 32 == 0


def test_required_configs_exist():
    names = {p.name for p in CONFIGS}
    for required in ("nanodet-plus-m_320.yml", "nanodet-plus-m_416.yml", "nanodet-plus-m-1.5x_320.yml",
                     "nanodet-plus-m-1.5x_416.yml"):
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
