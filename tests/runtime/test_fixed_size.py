"""An ncnn model bound to its export size is refused at another size when it is opened, in one line, by every
command; graphs that infer their reshapes (the official NanoDet-Plus file) and per-level outputs run at any size.

pnnx writes each level's number of priors into its Reshape layers (``0=2704 1=112`` at 416); the size-bound model
here is the official graph with exactly that edit, so the test needs no export. tests/test_configs.py checks the
same refusal on real pnnx exports of every config."""
import dataclasses
import shutil

import numpy as np
import pytest
from helpers import official_meta

from nanogfl.cli import main
from nanogfl.errors import UserError
from nanogfl.runtime.backends import open_model
from nanogfl.runtime.ncnn_support import check_ncnn_size, ncnn_fixed_size

LEVEL_PRIORS_416 = (2704, 676, 169, 49)  # strides 8, 16, 32, 64, in the order of the official Reshape layers


@pytest.fixture
def bound_model(official_model, tmp_path):
    """The official NanoDet-Plus-m 416 graph with the prior counts fixed, as pnnx writes them, + its metadata."""
    lines = official_model.read_text().splitlines()
    counts = iter(LEVEL_PRIORS_416)
    fixed = [line.replace(" 0=-1 ", f" 0={next(counts)} ") if line.startswith("Reshape") else line
             for line in lines]
    assert next(counts, None) is None  # all four reshapes were edited
    param = tmp_path / "bound_416.param"
    param.write_text("\n".join(fixed) + "\n")
    shutil.copy(official_model.with_suffix(".bin"), param.with_suffix(".bin"))
    official_meta().save(param.with_suffix(".json"))
    return param


def test_reshapes_tell_a_bound_graph(bound_model, official_model):
    assert ncnn_fixed_size(bound_model) and not ncnn_fixed_size(official_model)


def test_other_size_is_refused_at_open(bound_model):
    with pytest.raises(UserError) as error:
        open_model(bound_model, threads=1, input_hw=(320, 320))
    message = str(error.value)
    assert "\n" not in message and "exported for 416x416" in message and "not 320x320" in message
    assert "export again with --size 320 320" in message


def test_export_size_runs_and_matches_the_official_graph(bound_model, official_model):
    blob = np.random.default_rng(0).normal(size=(1, 3, 416, 416)).astype(np.float32)
    bound = open_model(bound_model, threads=1, input_hw=(416, 416))  # its own size, given explicitly
    np.testing.assert_array_equal(bound.forward(blob), open_model(official_model, threads=1).forward(blob))


def test_per_level_outputs_run_at_any_size(bound_model):
    meta = dataclasses.replace(official_meta(), split_outputs=[f"blob{i}" for i in range(8)])
    check_ncnn_size(bound_model, meta, (320, 256))  # no error: each level is its own output


@pytest.mark.parametrize("command", ["predict", "demo", "benchmark", "val"])
def test_every_command_refuses_in_one_line(command, bound_model, coco_images, coco_val, capsys):
    extra = {"predict": ["--source", str(coco_images[0])], "demo": ["--source", str(coco_images[0]), "--no-window"],
             "benchmark": ["--runs", "1", "--warmup", "0"],
             "val": ["--ann", str(coco_val[0]), "--images", str(coco_val[1])]}[command]
    status = main([command, "--model", str(bound_model), "--size", "320", "--threads", "1", *extra])
    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1 and err.startswith(f"nanogfl {command}: error: ") and "exported for 416x416" in err
