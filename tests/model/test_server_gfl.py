"""The server-size GFL detectors: exact parameter counts (mmdetection's), the parts' wiring on tiny inputs,
frozen statistics and stages, and the mmdetection / torchvision weight mappings, round trip."""
from __future__ import annotations

import os

import pytest
import torch
import torch.nn.functional as F

from nanogfl.checkpoint import load_model
from nanogfl.config import load_config
from nanogfl.importer.mmdet import import_mmdet
from nanogfl.model.backbones import ResNet
from nanogfl.model.box_ops import make_priors
from nanogfl.model.build import build_detector
from nanogfl.model.complexity import count_parameters, model_info
from nanogfl.model.deploy import deploy_model
from nanogfl.model.necks import FPN
from nanogfl.model.server_weights import (
    WeightsError,
    from_mmdet,
    load_into,
    load_torchvision_backbone,
    read_weights_file,
    to_mmdet,
)
from nanogfl.model.variants import DGQP_PARAMS, REFERENCES, gfl_r50, gfl_r101, gfl_x101_32x4d

BUILDERS = {"gfl-r50": gfl_r50, "gfl-r101": gfl_r101, "gfl-x101-32x4d": gfl_x101_32x4d}


@pytest.mark.parametrize("arch", BUILDERS)
def test_parameter_count_is_mmdetections(arch):
    model = BUILDERS[arch](num_classes=80)
    assert count_parameters(model) == REFERENCES[arch].trained_params  # 32,440,537 / 51,432,665 / 51,061,209
    assert model_info(model, (64, 64))["trained_params"] == REFERENCES[arch].trained_params


def test_folded_deploy_count_of_r50():
    assert count_parameters(deploy_model(gfl_r50(num_classes=80))) == REFERENCES["gfl-r50"].deploy_params


def test_gflv2_adds_the_quality_predictor():
    cfg = load_config("configs/gflv2_r50_fpn_1x.yml")
    model = build_detector(cfg.model, 80)
    assert count_parameters(model) == REFERENCES["gfl-r50"].trained_params + DGQP_PARAMS


def test_wiring_on_a_tiny_input():
    model = gfl_r50(num_classes=3).eval()
    with torch.no_grad():
        out = model(torch.zeros(1, 3, 96, 160))
    assert out.shape == (1, len(make_priors((96, 160), (8, 16, 32, 64, 128))), 3 + 4 * 17)
    head = model.head
    assert all(conv[0].bias is None and conv[1].num_groups == 32 for conv in head.cls_convs)
    assert isinstance(head.cls_convs[0][2], torch.nn.ReLU) and len(head.reg_convs) == 4
    assert [float(s.scale) for s in head.scales] == [1.0] * 5


def test_fpn_extra_levels_come_from_p5s_output_without_activation():
    torch.manual_seed(0)
    fpn = FPN((8, 16, 32), 8)
    c3, c4, c5 = torch.randn(1, 8, 16, 20), torch.randn(1, 16, 8, 10), torch.randn(1, 32, 4, 5)
    p3, p4, p5, p6, p7 = fpn([c3, c4, c5])
    lat5 = fpn.lateral_convs[2](c5)
    lat4 = fpn.lateral_convs[1](c4) + F.interpolate(lat5, size=(8, 10), mode="nearest")
    assert torch.allclose(p5, fpn.fpn_convs[2](lat5)) and torch.allclose(p4, fpn.fpn_convs[1](lat4))
    assert torch.allclose(p6, fpn.fpn_convs[3](p5)) and torch.allclose(p7, fpn.fpn_convs[4](p6))
    assert p6.shape[2:] == (2, 3) and p7.shape[2:] == (1, 2)


def test_frozen_stages_and_statistics_stay_put_while_training():
    backbone = ResNet(50)
    backbone.train()
    assert not any(p.requires_grad for p in backbone.layer1.parameters()) and not backbone.conv1.weight.requires_grad
    assert all(p.requires_grad for p in backbone.layer2.parameters())
    assert not any(m.training for m in backbone.modules() if isinstance(m, torch.nn.BatchNorm2d))
    before = backbone.layer3[0].bn1.running_mean.clone()
    backbone(torch.randn(2, 3, 64, 64))[0].sum().backward()
    assert torch.equal(before, backbone.layer3[0].bn1.running_mean) and backbone.conv1.weight.grad is None


def test_mmdet_checkpoint_imports_with_every_key_mapped(tmp_path):
    cfg = load_config("configs/gflv2_r50_fpn_1x.yml")
    torch.manual_seed(0)
    ours = build_detector(cfg.model, 5).eval()
    state = to_mmdet(ours.state_dict())
    assert all(k.startswith(("backbone.", "neck.lateral_convs.", "neck.fpn_convs.", "bbox_head.")) for k in state)
    assert "neck.lateral_convs.0.conv.weight" in state and "bbox_head.cls_convs.3.gn.weight" in state
    state["bbox_head.integral.project"] = torch.linspace(0, 16, 17)
    names = ("a", "b", "c", "d", "e")
    torch.save({"meta": {"dataset_meta": {"classes": names}}, "state_dict": state}, tmp_path / "gfl.pth")
    import_mmdet(tmp_path / "gfl.pth", tmp_path / "gfl.pt", "gfl-r50", log=lambda _: None)
    model, loaded_cfg, class_names = load_model(tmp_path / "gfl.pt")
    assert class_names == list(names) and loaded_cfg.model.head.quality == "dgqp"
    images = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        assert torch.equal(model(images), ours(images))

    state["bbox_head.extra.weight"] = torch.zeros(1)
    with pytest.raises(WeightsError, match="not part of a GFL detector: bbox_head.extra.weight"):
        from_mmdet(state, "gfl.pth")
    del state["bbox_head.extra.weight"], state["neck.fpn_convs.4.conv.bias"]
    with pytest.raises(WeightsError, match=r"1 missing \(neck.fpn_convs.4.bias\)"):
        load_into(build_detector(cfg.model, 5), from_mmdet(state, "gfl.pth"), "gfl.pth")


def test_rgb_first_convolution_becomes_bgr():
    rgb_weight = torch.randn(64, 3, 7, 7)
    mapped = from_mmdet({"backbone.conv1.weight": rgb_weight}, "x")["backbone.conv1.weight"]
    rgb = torch.randn(1, 3, 16, 16)
    assert torch.allclose(F.conv2d(rgb, rgb_weight), F.conv2d(rgb.flip(1), mapped), atol=1e-5)


def test_torchvision_imagenet_weights_initialise_the_backbone(tmp_path):
    torch.manual_seed(1)
    source = ResNet(50, groups=32, width_per_group=4).eval()  # ResNeXt-50 32x4d: the same code path as X-101
    state = {k: v for k, v in source.state_dict().items() if not k.endswith("num_batches_tracked")}
    state["conv1.weight"] = state["conv1.weight"].flip(1)  # torchvision files take RGB
    state["fc.weight"], state["fc.bias"] = torch.zeros(1000, 2048), torch.zeros(1000)
    torch.save(state, tmp_path / "resnext.pth")
    target = ResNet(50, groups=32, width_per_group=4).eval()
    load_torchvision_backbone(target, tmp_path / "resnext.pth")
    images = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(source(images), target(images)))
    with pytest.raises(WeightsError, match="does not fit this model"):
        load_torchvision_backbone(ResNet(101), tmp_path / "resnext.pth")


class _Exploit:
    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_opening_a_weights_file_runs_no_code_from_it(tmp_path):
    exploit = _Exploit()
    exploit.marker = tmp_path / "ran"
    torch.save({"state_dict": {"w": torch.ones(2)}, "message_hub": exploit}, tmp_path / "evil.pth")
    state, _ = read_weights_file(tmp_path / "evil.pth")
    assert torch.equal(state["w"], torch.ones(2)) and not (tmp_path / "ran").exists()
    with pytest.raises(WeightsError, match="weights file not found"):
        read_weights_file(tmp_path / "missing.pth")
