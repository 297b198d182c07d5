"""GFLV2's DGQP: the export-friendly top-k equals torch.topk (values and gradients), the predictor has the official
size, layout and init, the joint-score logit is stable, and the branch exports to ONNX and ncnn (fp32) with the
same numbers as PyTorch, on a tiny image model and on a NanoDet-Plus-m with a real COCO image."""
from __future__ import annotations

import collections
import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nanogfl.model.heads.common import flatten_levels
from nanogfl.model.heads.quality import DistributionQuality, joint_score_logits, top_k_values
from nanogfl.runtime.ncnn_support import NCNN_PRECISION_OPTIONS

NUM_CLASSES = 80
FP32_EXACT = 1e-5
# the built-in ncnn layers our DGQP graphs use; pnnx leaves ops it cannot convert as pnnx.* / torch.* / F.* /
# Tensor.* layers, which ncnn refuses to load (torch.narrow did: the reason top_k_values slices)
NCNN_LAYERS = {"Input", "Convolution", "ConvolutionDepthWise", "Pooling", "ReLU", "Sigmoid", "Softmax", "Reshape",
               "Permute", "Slice", "Split", "Concat", "BinaryOp", "Interp", "ShuffleChannel"}


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    # the exports trace small graphs; on a busy 2-core machine two OpenMP threads can be many times slower than one
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


class QualityDeploy(nn.Module):
    """image -> [B, N, C + 4 * (reg_max + 1) + 1]: GFLV2 joint score sigmoid(cls) * sigmoid(quality), the box
    logits, then the quality logit (so the test sees it directly). ``features`` maps the image to raw [B, N, C + 32]."""

    def __init__(self, features: nn.Module, num_classes: int, reg_max: int = 7) -> None:
        super().__init__()
        self.features = features
        self.num_classes = num_classes
        self.quality = DistributionQuality(reg_max)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        preds = self.features(images)
        cls, box = preds[..., :self.num_classes], preds[..., self.num_classes:]
        quality = self.quality(box)  # [B, N, 1]
        return torch.cat((cls.sigmoid() * quality.sigmoid(), box, quality), dim=-1)


class TinyFeatures(nn.Module):
    """One stride-8 conv: image [1, 3, H, W] -> raw predictions [1, H/8 * W/8, C + 32], flattened like our heads."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, num_classes + 32, 3, stride=8, padding=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return flatten_levels([self.conv(images)])


def spread_quality(model: QualityDeploy) -> QualityDeploy:
    """Weights large enough that the quality logits vary over a few units (the official init gives ~0)."""
    torch.manual_seed(1)
    for conv in (model.quality.conv1, model.quality.conv2):
        nn.init.normal_(conv.weight, std=0.5)
        nn.init.normal_(conv.bias, std=0.1)
    return model.eval()


def reference_quality(box_logits: torch.Tensor, dgqp: DistributionQuality) -> torch.Tensor:
    """The official computation, with torch.topk, on [B, N, 4 * bins] -> quality logits [B, N, 1]."""
    b, n, _ = box_logits.shape
    prob = F.softmax(box_logits.reshape(b, n, 4, dgqp.reg_max + 1), dim=-1)
    top = prob.topk(dgqp.topk, dim=-1).values
    stat = torch.cat((top, top.mean(dim=-1, keepdim=True)), dim=-1).reshape(b, n, -1)
    hidden = F.relu(F.linear(stat, dgqp.conv1.weight.flatten(1), dgqp.conv1.bias))
    return F.linear(hidden, dgqp.conv2.weight.flatten(1), dgqp.conv2.bias)


@pytest.mark.parametrize("shape", [(7, 8), (3, 5, 8), (2, 4, 17), (1, 3, 6, 17)])
@pytest.mark.parametrize("k", [1, 4])
def test_top_k_values_equal_topk_with_ties(shape, k):
    torch.manual_seed(0)
    for x in (torch.randn(shape), torch.randint(0, 3, shape).float(), torch.zeros(shape)):  # many exact ties
        assert torch.equal(top_k_values(x, k), torch.topk(x, k).values)
    x = torch.randint(0, 4, shape).float()
    assert torch.equal(top_k_values(x, shape[-1]), torch.sort(x, descending=True).values)
    if len(shape) >= 3 and shape[1] >= k:
        assert torch.equal(top_k_values(x, k, dim=1), torch.topk(x, k, dim=1).values)


@pytest.mark.parametrize("n", [8, 17])
def test_top_k_values_gradient_equals_topk(n):
    torch.manual_seed(0)
    x, upstream = torch.randn(6, 4, n, dtype=torch.float64), torch.randn(6, 4, 4, dtype=torch.float64)  # no ties
    ours, theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
    (top_k_values(ours, 4) * upstream).sum().backward()
    (torch.topk(theirs, 4).values * upstream).sum().backward()
    assert torch.equal(ours.grad, theirs.grad)
    with pytest.raises(ValueError, match="k must be in"):
        top_k_values(x, n + 1)


@pytest.mark.parametrize("reg_max", [7, 16])
def test_predictor_size_and_official_init(reg_max):
    dgqp = DistributionQuality(reg_max)
    assert sum(p.numel() for p in dgqp.parameters()) == 1409  # 20*64+64 + 64+1, whatever reg_max
    assert dgqp.conv1.weight.shape == (64, 20, 1, 1) and dgqp.conv2.weight.shape == (1, 64, 1, 1)
    assert dgqp.conv1.weight.std().item() == pytest.approx(0.01, rel=0.1)
    assert not dgqp.conv1.bias.any() and not dgqp.conv2.bias.any()
    assert sum(p.numel() for p in DistributionQuality(reg_max, add_mean=False).parameters()) == 16 * 64 + 64 + 65


@pytest.mark.parametrize("reg_max", [7, 16])
def test_forward_matches_official_layout_and_trains_the_bins(reg_max):
    torch.manual_seed(0)
    dgqp = spread_quality(QualityDeploy(nn.Identity(), 0, reg_max)).quality
    box = (torch.randn(2, 50, 4 * (reg_max + 1)) * 3).requires_grad_()
    out, expected = dgqp(box), reference_quality(box, dgqp)
    assert out.shape == (2, 50, 1)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
    grad, expected_grad = (torch.autograd.grad(y.sum(), box)[0] for y in (out, expected))
    assert grad.abs().sum() > 0  # not detached: the quality loss reaches the distribution, as topk's would
    torch.testing.assert_close(grad, expected_grad, rtol=1e-4, atol=1e-7)
    with pytest.raises(ValueError, match="takes"):
        dgqp(torch.zeros(1, 5, 4 * (reg_max + 2)))


def test_joint_score_logits_is_logit_of_product():
    grid = torch.cat((torch.linspace(-50, 50, 201), torch.tensor([-1e4, -88.0, 88.0, 1e4])))
    a, b = torch.meshgrid(grid, grid, indexing="ij")
    logits = joint_score_logits(a, b)
    assert torch.isfinite(logits).all() and logits.abs().max() <= 100
    exact = torch.sigmoid(a.double()) * torch.sigmoid(b.double())
    torch.testing.assert_close(torch.sigmoid(logits.double()), exact, rtol=1e-5, atol=1e-7)
    # where p < 1 in float32 the logit itself is right (p = 1 is clamped at +100 instead of inf)
    target = torch.rand_like(a)
    moderate = (a.abs() <= 15) & (b.abs() <= 15)
    bce_logits = F.binary_cross_entropy_with_logits(logits.double(), target.double(), reduction="none")
    bce = F.binary_cross_entropy(exact, target.double(), reduction="none")
    torch.testing.assert_close(bce_logits[moderate], bce[moderate], rtol=1e-5, atol=1e-6)
    assert joint_score_logits(torch.tensor([[1.0, 2.0]]), torch.tensor([[0.5]])).shape == (1, 2)  # broadcasts


def test_joint_score_logits_gradients_are_finite():
    grid = torch.tensor([-1e4, -100.0, -50.0, -20.0, -1.0, 0.0, 1.0, 20.0, 50.0, 100.0, 1e4])
    a, b = (t.clone().requires_grad_() for t in torch.meshgrid(grid, grid, indexing="ij"))
    target = torch.full_like(a, 0.3)
    F.binary_cross_entropy_with_logits(joint_score_logits(a, b), target, reduction="sum").backward()
    assert torch.isfinite(a.grad).all() and torch.isfinite(b.grad).all()
    a64, b64 = a.detach().double().requires_grad_(), b.detach().double().requires_grad_()
    small = (a64.abs() <= 20) & (b64.abs() <= 20)
    p = torch.sigmoid(a64) * torch.sigmoid(b64)  # written out: F.binary_cross_entropy clamps p * (1 - p) in its grad
    (-(target * torch.log(p) + (1 - target) * torch.log1p(-p))).sum().backward()
    torch.testing.assert_close(a.grad.double()[small], a64.grad[small], rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(b.grad.double()[small], b64.grad[small], rtol=1e-4, atol=1e-6)


# --- export --------------------------------------------------------------------------------------------------


def onnx_export(model: nn.Module, input_hw: tuple[int, int], path: Path, opset: int | None) -> Path:
    """torch.onnx.export (legacy exporter) at ``opset``; None: the project's export_onnx (opset 13 + onnxsim)."""
    pytest.importorskip("onnx")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer notes
        if opset is None:
            from nanogfl.exporter.onnx_export import export_onnx

            return export_onnx(model, input_hw, path)
        torch.onnx.export(model, (torch.zeros(1, 3, *input_hw),), str(path), dynamo=False, opset_version=opset,
                          input_names=["data"], output_names=["output"], do_constant_folding=True)
    return path


def onnx_run(path: Path, blob: np.ndarray) -> np.ndarray:
    ort = pytest.importorskip("onnxruntime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(["output"], {"data": blob})[0][0]


def ncnn_export(model: nn.Module, input_hw: tuple[int, int], path: Path, fp16: bool) -> Path:
    pytest.importorskip("pnnx")
    from nanogfl.exporter.ncnn_export import export_ncnn

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes
        return export_ncnn(model, input_hw, path, fp16=fp16)[0]


def ncnn_run(param: Path, blob: np.ndarray, fp16: bool) -> np.ndarray:
    ncnn = pytest.importorskip("ncnn")
    net = ncnn.Net()
    net.opt.num_threads = 1
    for option, value in NCNN_PRECISION_OPTIONS["fp16" if fp16 else "fp32"].items():
        setattr(net.opt, option, value)
    assert net.load_param(str(param)) == 0 and net.load_model(str(param.with_suffix(".bin"))) == 0
    image = np.ascontiguousarray(blob[0])  # the Mat refers to this memory: keep it alive
    extractor = net.create_extractor()
    extractor.input("data", ncnn.Mat(image))
    status, output = extractor.extract("output")
    assert status == 0, f"ncnn extract failed with status {status}"
    return np.array(output)


def layer_types(param: Path) -> collections.Counter:
    return collections.Counter(line.split()[0] for line in param.read_text().splitlines()[2:] if line.strip())


@torch.no_grad()
def torch_run(model: nn.Module, blob: np.ndarray) -> np.ndarray:
    return model(torch.from_numpy(blob))[0].numpy()


def test_tiny_model_exports_to_onnx_and_ncnn_exactly(tmp_path):
    pytest.importorskip("ncnn")
    torch.manual_seed(0)
    model = spread_quality(QualityDeploy(TinyFeatures(NUM_CLASSES), NUM_CLASSES))
    nn.init.normal_(model.features.conv.weight, std=0.3)  # box logits over several units: peaked distributions
    input_hw = (96, 128)
    blob = np.random.RandomState(0).randn(1, 3, *input_hw).astype(np.float32)
    expected = torch_run(model, blob)
    assert expected.shape == (12 * 16, NUM_CLASSES + 32 + 1) and expected[:, -1].std() > 0.3

    opsets = (11, 13, None) if importlib.util.find_spec("onnxsim") else (11, 13)
    for opset in opsets:
        path = onnx_export(model, input_hw, tmp_path / f"tiny{opset}.onnx", opset)
        ops = collections.Counter(node.op_type for node in pytest.importorskip("onnx").load(str(path)).graph.node)
        diff = np.abs(onnx_run(path, blob) - expected).max()
        print(f"ONNX {f'opset {opset}' if opset else 'export_onnx (opset 13, onnxsim)'}: max abs diff {diff:.2e}; "
              f"ops {dict(sorted(ops.items()))}")
        assert diff < FP32_EXACT and "TopK" not in ops

    param = ncnn_export(model, input_hw, tmp_path / "tiny.param", fp16=False)
    diff = np.abs(ncnn_run(param, blob, fp16=False) - expected)
    print(f"ncnn fp32: max abs diff {diff.max():.2e} (quality logit {diff[:, -1].max():.2e})")
    assert diff.max() < FP32_EXACT

    types = layer_types(param)
    assert set(types) <= NCNN_LAYERS, f"layers ncnn may not run: {set(types) - NCNN_LAYERS}"
    added = types - layer_types(ncnn_export(TinyFeatures(NUM_CLASSES), input_hw, tmp_path / "bare.param", False))
    print(f"DGQP (with the joint-score multiply and the extra output column) adds {sum(added.values())} ncnn "
          f"layers: {dict(sorted(added.items()))}")

    param16 = ncnn_export(model, input_hw, tmp_path / "tiny16.param", fp16=True)
    diff16 = np.abs(ncnn_run(param16, blob, fp16=True) - expected)
    print(f"ncnn fp16 weights and arithmetic: max abs diff scores {diff16[:, :NUM_CLASSES].max():.2e}, "
          f"box logits {diff16[:, NUM_CLASSES:-1].max():.2e}, quality logit {diff16[:, -1].max():.2e}")
    assert diff16[:, :NUM_CLASSES].max() < 2e-2


def test_real_model_on_coco_image_exports_with_dgqp(coco_images, tmp_path):
    """NanoDet-Plus-m (random weights, BN fitted) + DGQP on a COCO image at 320: within the project's fp32 export
    tolerance end to end, and DGQP itself exact (ONNX/ncnn quality == PyTorch DGQP on their own box logits)."""
    pytest.importorskip("ncnn")
    import cv2

    from nanogfl.model import deploy_model, nanodet_plus_m
    from nanogfl.runtime.preprocess import preprocess

    torch.manual_seed(0)
    input_hw = (320, 320)
    blobs = [preprocess(cv2.imread(str(path)), input_hw)[0] for path in coco_images[:3]]
    detector = nanodet_plus_m(NUM_CLASSES, with_aux=False)
    for module in detector.modules():  # BN statistics of real images, so activations are in range after folding
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = None
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.normal_(0, 0.1)
    with torch.no_grad():
        detector.train()(torch.from_numpy(np.concatenate(blobs[1:])))
        for conv in detector.head.predictors:
            conv.weight.normal_(0, 0.5)
    model = spread_quality(QualityDeploy(deploy_model(detector).detector, NUM_CLASSES))
    expected = torch_run(model, blob := blobs[0])  # not among the calibration images
    box = slice(NUM_CLASSES, NUM_CLASSES + 32)
    print(f"box logits std {expected[:, box].std():.2f}, quality logit std {expected[:, -1].std():.2f}")
    assert expected[:, box].std() > 1.0  # distributions far from uniform

    param = ncnn_export(model, input_hw, tmp_path / "real.param", fp16=False)
    assert set(layer_types(param)) <= NCNN_LAYERS
    onnx_path = onnx_export(model, input_hw, tmp_path / "real.onnx", 13)
    outputs = {"onnx": onnx_run(onnx_path, blob), "ncnn": ncnn_run(param, blob, fp16=False)}
    for name, actual in outputs.items():
        diff = np.abs(actual - expected)
        with torch.no_grad():
            own = model.quality(torch.from_numpy(actual[None, :, box]))[0, :, 0].numpy()
        dgqp_diff = np.abs(actual[:, -1] - own).max()
        print(f"{name} fp32 on a COCO image: scores {diff[:, :NUM_CLASSES].max():.2e}, box logits "
              f"{diff[:, box].max():.2e}, quality logit {diff[:, -1].max():.2e}; DGQP alone {dgqp_diff:.2e}")
        assert diff[:, :NUM_CLASSES].max() < 1e-4 and diff[:, box].max() < 2e-3
        assert dgqp_diff < FP32_EXACT
