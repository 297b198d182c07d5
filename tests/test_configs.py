"""Every shipped config, the same way: it loads, builds, runs, takes a training step, exports with a passing
parity check, and has the deploy size recorded for it (the official file's, for the published models)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from nanogfl.checkpoint import Checkpoint, save_checkpoint
from nanogfl.config import load_config
from nanogfl.errors import UserError
from nanogfl.exporter.pipeline import ExportOptions, export_checkpoint
from nanogfl.importer.convert import read_source
from nanogfl.model.box_ops import make_priors
from nanogfl.model.build import build_criterion, build_detector
from nanogfl.model.complexity import count_macs, count_parameters
from nanogfl.model.deploy import deploy_model
from nanogfl.model.variants import DGQP_MACS_PER_PRIOR, DGQP_PARAMS, REFERENCES, SERVER_HW
from nanogfl.runtime.backends import open_model
from nanogfl.runtime.metadata import ModelMeta

CONFIGS = sorted(Path(__file__).resolve().parents[1].joinpath("configs").glob("*.yml"))
STEP_HW = (96, 128)  # small input for the training step and the export
EXPORTED_SERVER_CONFIGS = {"gflv2_r50_fpn_1x"}  # one server-size config (with DGQP) goes through the exporters


def test_configs_found():
    assert len(CONFIGS) >= 17


def reference_size(cfg) -> tuple[int, int]:
    """(deploy params, MACs at the config's input size) recorded for ``cfg``: the official model's, plus GFLV2's
    predictor when the config adds it."""
    reference = REFERENCES[cfg.model.arch]
    size_hw = SERVER_HW if cfg.model.backbone.name == "resnet" else cfg.input_hw  # published at 1333x800
    assert size_hw in reference.deploy_macs, "no recorded size"
    params, macs = reference.deploy_params, reference.deploy_macs[size_hw]
    if cfg.model.head.quality == "dgqp":
        params += DGQP_PARAMS
        macs += len(make_priors(size_hw, tuple(cfg.model.head.strides))) * DGQP_MACS_PER_PRIOR
    return size_hw, params, macs


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_builds_trains_exports_and_has_its_recorded_size(path, tmp_path):
    cfg = load_config(path)
    torch.manual_seed(0)
    model = build_detector(cfg.model, 80, with_aux=True)

    size_hw, params, macs = reference_size(cfg)
    server = cfg.model.backbone.name == "resnet"
    if server:  # counted on the meta device: shapes only, no 300-GMAC forward pass on the CPU
        with torch.device("meta"):
            counted = deploy_model(build_detector(cfg.model, 80, with_aux=False), fold_batchnorm=False)
        assert count_macs(counted, size_hw) == macs
        assert count_parameters(model) - DGQP_PARAMS * (cfg.model.head.quality == "dgqp") == \
            REFERENCES[cfg.model.arch].trained_params  # the folded count: tests/model/test_server_gfl.py
        deploy = deploy_model(model, fold_batchnorm=False)
    else:
        deploy = deploy_model(model)
        assert count_parameters(deploy) == pytest.approx(params, rel=1e-3)
        assert count_macs(deploy, size_hw) == pytest.approx(macs, rel=1e-3)
    run_hw = STEP_HW if server else cfg.input_hw
    with torch.no_grad():
        out = deploy(torch.zeros(1, 3, *run_hw))
    box_columns = 4 * (cfg.model.head.reg_max + 1)
    assert out.shape == (1, len(make_priors(run_hw, tuple(cfg.model.head.strides))), 80 + box_columns)
    assert 0 <= out[..., :80].min() and out[..., :80].max() <= 1

    criterion = build_criterion(cfg.model, 80)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    images = torch.randn(2, 3, *STEP_HW)
    boxes = [torch.tensor([[10.0, 12.0, 60.0, 80.0], [70.0, 20.0, 120.0, 50.0]]),
             torch.tensor([[5.0, 5.0, 40.0, 40.0]])]
    labels = [torch.tensor([0, 2]), torch.tensor([79])]
    main, aux = model.train().forward_train(images, epoch=0)
    assert (aux is not None) == cfg.model.aux_head
    loss, terms = criterion(main, aux, boxes, labels, STEP_HW)
    assert torch.isfinite(loss) and terms["num_pos"] > 0
    loss.backward()
    last_conv = model.head.predictors[0] if hasattr(model.head, "predictors") else model.head.cls_out
    assert last_conv.weight.grad.abs().sum() > 0
    optimizer.step()

    if server and path.stem not in EXPORTED_SERVER_CONFIGS:
        return  # the same graph family as the exported one, 30-50 M parameters: too slow to export each on CI
    weights = tmp_path / "model.pt"
    save_checkpoint(weights, Checkpoint(model=model.state_dict(), config=cfg.to_dict(), class_names=[str(i) for i in
                                        range(80)], aux_trained=cfg.model.aux_head))
    result = export_checkpoint(weights, tmp_path / "export", ExportOptions(input_hw=STEP_HW), log=lambda _: None)
    assert [p.ok for p in result.parity] == [True, True]
    assert {p.suffix for p in result.files} == {".onnx", ".param", ".bin", ".json"}
    param = next(p for p in result.files if p.suffix == ".param")
    assert ModelMeta.load(param.with_suffix(".json")).ncnn_precision == "fp32"  # what the parity check used
    # pnnx fixes the number of priors in the graph: another size is refused when the model is opened
    with pytest.raises(UserError, match=f"exported for {STEP_HW[0]}x{STEP_HW[1]} .* export again"):
        open_model(param, input_hw=(STEP_HW[0] + 32, STEP_HW[1]))


@pytest.mark.parametrize("arch", [a for a, r in REFERENCES.items() if r.official_file])
def test_recorded_size_is_the_official_files(arch, shared_data):
    reference = REFERENCES[arch]
    graph = read_source(shared_data / reference.official_file)
    for size_hw, macs in reference.deploy_macs.items():
        assert graph.complexity(size_hw) == (reference.deploy_params, macs)
