import pytest
import torch
import torch.nn.functional as F

from nanogfl.model import DeployModel, deploy_model, nanodet_plus_m, nanodet_plus_m_0_5x, nanodet_plus_m_1_5x
from nanogfl.model.backbones.shufflenetv2 import channel_shuffle
from nanogfl.model.box_ops import decode_boxes, make_priors
from nanogfl.model.complexity import count_macs, count_parameters
from nanogfl.model.fuse import fuse_batchnorm

# Measured from the official NanoDet-Plus models (BN folded, aux dropped): params, GMACs at 320 and 416.
REFERENCE = {
    nanodet_plus_m: (1.186e6, 0.451e9, 0.762e9),
    nanodet_plus_m_1_5x: (2.461e6, 0.879e9, 1.486e9),
}
BUILDERS = [nanodet_plus_m, nanodet_plus_m_1_5x, nanodet_plus_m_0_5x]


@pytest.mark.parametrize("builder", list(REFERENCE), ids=lambda b: b.__name__)
def test_size_matches_official(builder):
    params, macs320, macs416 = REFERENCE[builder]
    deploy = deploy_model(builder())
    assert count_parameters(deploy) == pytest.approx(params, rel=0.01)
    assert count_macs(deploy, (320, 320)) == pytest.approx(macs320, rel=0.02)
    assert count_macs(deploy, (416, 416)) == pytest.approx(macs416, rel=0.02)


@pytest.mark.parametrize("builder", BUILDERS, ids=lambda b: b.__name__)
def test_output_layout(builder):
    model = builder(num_classes=3).eval()
    with torch.no_grad():
        out = model(torch.zeros(1, 3, 320, 416))
    # strides 8/16/32/64 on 320x416: 40*52 + 20*26 + 10*13 + 5*7
    assert out.shape == (1, 40 * 52 + 20 * 26 + 10 * 13 + 5 * 7, 3 + 32)
    main, aux = model.train().forward_train(torch.zeros(2, 3, 320, 320), epoch=0)
    assert main.shape == aux.shape == (2, 2125, 35)


def test_initial_class_probability_is_one_percent():
    model = nanodet_plus_m().eval()
    with torch.no_grad():
        probs = DeployModel(model)(torch.randn(1, 3, 320, 320))[..., :80]
    assert probs.mean().item() == pytest.approx(0.01, rel=0.05)


def test_aux_branch_stops_training_trunk_after_detach_epoch():
    model = nanodet_plus_m(detach_epoch=1).train()
    x = torch.randn(1, 3, 128, 128)
    for epoch, expect_grad in ((0, True), (1, False)):
        model.zero_grad()
        _, aux = model.forward_train(x, epoch)
        aux.sum().backward()
        grad = model.backbone.stem[0].weight.grad
        assert (grad is not None and grad.abs().sum() > 0) == expect_grad
        assert model.aux_head.cls_out.weight.grad.abs().sum() > 0


def test_channel_shuffle_matches_torch():
    x = torch.randn(2, 8, 3, 3)
    assert torch.equal(channel_shuffle(x, 2), F.channel_shuffle(x, 2))


def test_fused_model_computes_the_same_function():
    model = nanodet_plus_m().train()
    with torch.no_grad():  # give BN non-trivial statistics
        for _ in range(3):
            model(torch.randn(2, 3, 128, 128))
    model.eval()
    fused = fuse_batchnorm(model.drop_aux())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    x = torch.randn(1, 3, 192, 256)
    with torch.no_grad():
        torch.testing.assert_close(fused(x), model(x), atol=1e-4, rtol=1e-4)


def test_priors_have_no_offset_and_ceil_sizes():
    priors = make_priors((416, 416), (8, 16, 32, 64))
    assert priors.shape == (52 * 52 + 26 * 26 + 13 * 13 + 7 * 7, 3)
    assert priors[0].tolist() == [0.0, 0.0, 8.0]
    assert priors[1].tolist() == [8.0, 0.0, 8.0]
    assert priors[52].tolist() == [0.0, 8.0, 8.0]
    assert priors[-1].tolist() == [6 * 64.0, 6 * 64.0, 64.0]


def test_decode_expectation_times_stride():
    priors = torch.tensor([[16.0, 32.0, 8.0]])
    logits = torch.full((1, 32), -1e4)
    for side, bin_ in enumerate((1, 2, 3, 4)):  # one-hot bins: l=1, t=2, r=3, b=4
        logits[0, side * 8 + bin_] = 0.0
    box = decode_boxes(logits, priors, reg_max=7)
    assert box.tolist() == [[16 - 8.0, 32 - 16.0, 16 + 24.0, 32 + 32.0]]
