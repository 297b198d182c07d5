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
from nanogfl.model.variants import DGQP_MACS_PER_PRIOR, DGQP_PARAMS, REFERENCES
from nanogfl.runtime.backends import open_model
from nanogfl.runtime.metadata import ModelMeta

CONFIGS = sorted(Path(__file__).resolve().parents[1].joinpath("configs").glob("*.yml"))
STEP_HW = (96, 128)  # small input for the training step and the export


def test_configs_found():
    assert len(CONFIGS) >= 9


def reference_size(cfg) -> tuple[int, int]:
    """(deploy params, MACs at the config's input size) recorded for ``cfg``: the official model's, plus GFLV2's
    predictor when the config adds it."""
    reference = REFERENCES[cfg.model.arch]
    assert cfg.input_hw[0] == cfg.input_hw[1] and cfg.input_hw[0] in reference.deploy_macs, "no recorded size"
    params, macs = reference.deploy_params, reference.deploy_macs[cfg.input_hw[0]]
    if cfg.model.head.quality == "dgqp":
        params += DGQP_PARAMS
        macs += len(make_priors(cfg.input_hw, tuple(cfg.model.head.strides))) * DGQP_MACS_PER_PRIOR
    return params, macs


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_builds_trains_exports_and_has_its_recorded_size(path, tmp_path):
    cfg = load_config(path)
    torch.manual_seed(0)
    model = build_detector(cfg.model, 80, with_aux=True)

    params, macs = reference_size(cfg)
    deploy = deploy_model(model)
    assert count_parameters(deploy) == pytest.approx(params, rel=1e-3)
    assert count_macs(deploy, cfg.input_hw) == pytest.approx(macs, rel=1e-3)
    with torch.no_grad():
        out = deploy(torch.zeros(1, 3, *cfg.input_hw))
    assert out.shape == (1, len(make_priors(cfg.input_hw, tuple(cfg.model.head.strides))), 80 + 32)
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
    assert model.head.predictors[0].weight.grad.abs().sum() > 0
    optimizer.step()

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
    for size, macs in reference.deploy_macs.items():
        assert graph.complexity((size, size)) == (reference.deploy_params, macs)
