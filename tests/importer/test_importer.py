"""nanogfl.importer: graph-derived weight mapping from ncnn/ONNX, parity with the official ncnn model,
BatchNorm reconstruction, the import command and its refusals (more refusals: test_import_refusals.py)."""
from __future__ import annotations

import copy
import io
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from nanogfl.checkpoint import load_model
from nanogfl.cli import main
from nanogfl.contract import BGR_MEAN, BGR_STD
from nanogfl.importer.convert import import_graph, read_source
from nanogfl.importer.graph_match import GraphMismatch
from nanogfl.importer.ncnn_reader import NcnnFormatError, parse_layer_params
from nanogfl.importer.onnx_reader import read_onnx
from nanogfl.importer.pipeline import image_batches
from nanogfl.importer.verify import open_source
from nanogfl.model import GFLDetector, build_variant
from nanogfl.model.backbones import ShuffleNetV2
from nanogfl.model.batchnorm_stats import _ChannelMoments, rebuild_batchnorm
from nanogfl.model.deploy import DeployModel
from nanogfl.model.fuse import conv_batchnorm_pairs, fuse_batchnorm
from nanogfl.model.heads import DepthwiseGFLHead
from nanogfl.model.necks import GhostPAN
from nanogfl.runtime.coco_names import COCO_CLASSES
from nanogfl.runtime.preprocess import preprocess

SMALL_HW = (64, 64)
NUM_BINS = 8


def randomised(model: GFLDetector, seed: int = 0) -> GFLDetector:
    """Non-trivial BatchNorm statistics and biases, so that folding changes every weight."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                for tensor, low, high in ((module.running_mean, -0.5, 0.5), (module.running_var, 0.5, 2.0),
                                          (module.weight, 0.5, 1.5), (module.bias, -0.5, 0.5)):
                    tensor.copy_(torch.rand(tensor.shape, generator=generator) * (high - low) + low)
            elif isinstance(module, torch.nn.Conv2d):
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * 0.1)
    return model.eval()


def onnx_bytes(net: torch.nn.Module, fold_constants: bool = True) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net.eval(), torch.zeros(1, 3, *SMALL_HW), buffer, dynamo=False, opset_version=11,
                          input_names=["data"], output_names=["output"], do_constant_folding=fold_constants)
    return buffer.getvalue()


def folded_parameters(model: GFLDetector) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Conv name -> (weight, bias) as an imported model stores them: the bias sits in the identity BN."""
    pairs = conv_batchnorm_pairs(model)
    result = {}
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Conv2d) and not name.startswith(("aux_neck", "aux_head")):
            bias = pairs[name][1].bias if name in pairs else module.bias
            result[name] = (module.weight.detach(), bias.detach())
    return result


def fused_parameters(model: GFLDetector) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    fused = fuse_batchnorm(copy.deepcopy(model).drop_aux())
    return {name: (m.weight.detach(), m.bias.detach()) for name, m in fused.named_modules()
            if isinstance(m, torch.nn.Conv2d)}


def real_blobs(folder: Path, count: int, input_hw: tuple[int, int]) -> np.ndarray:
    import cv2
    files = sorted(folder.glob("*.jpg"))[:count]
    return np.concatenate([preprocess(cv2.imread(str(f)), input_hw)[0] for f in files])


@pytest.fixture(scope="module")
def official_model(official_ncnn) -> GFLDetector:
    return import_graph(read_source(official_ncnn), "nanodet-plus-m")


# ---------------------------------------------------------------- readers

def test_ncnn_layer_params_parse_ints_floats_and_arrays():
    params = parse_layer_params(["0=24", "1=3", "-23310=1,1.000000e-01", "5=1"], "x")
    assert params == {0: 24, 1: 3, 10: [0.1], 5: 1}
    assert parse_layer_params(["-23300=2,-233,-233"], "x") == {0: [-233, -233]}
    with pytest.raises(NcnnFormatError, match="bad layer parameter"):
        parse_layer_params(["0=abc"], "model.param:5")


def test_official_ncnn_reads_as_fp16_convolutions(official_ncnn):
    graph = read_source(official_ncnn)
    assert graph.weight_format == "fp16"
    assert graph.inputs == ["data"] and graph.outputs == ["output"]
    assert len(graph.convs) == 110
    assert graph.convs[0].describe() == "dense 3x3 s2 3->24"
    assert sum(c.kind == "depthwise" for c in graph.convs) == 43


# ---------------------------------------------------------------- round trips

@pytest.mark.parametrize("fold", [True, False], ids=["bn-folded", "bn-in-graph"])
def test_onnx_round_trip_gives_identical_weights(fold):
    torch.manual_seed(1)
    model = randomised(build_variant("nanodet-plus-m", num_classes=3, with_aux=False))
    net = DeployModel(fuse_batchnorm(model) if fold else model)
    source = read_onnx(onnx_bytes(net, fold_constants=fold))
    assert source.has_op("BatchNormalization") is False  # folded by the reader when present in the file
    imported = import_graph(source, "nanodet-plus-m")
    assert imported.num_classes == 3
    expected, got = fused_parameters(model), folded_parameters(imported)
    assert expected.keys() == got.keys() and len(got) == 110
    for name, (weight, bias) in expected.items():
        if fold:  # the file holds our exact tensors
            assert torch.equal(got[name][0], weight), name
            assert torch.equal(got[name][1], bias), name
        else:  # folded by the reader in float64 instead of by torch in float32
            torch.testing.assert_close(got[name][0], weight, rtol=1e-5, atol=1e-7)
            torch.testing.assert_close(got[name][1], bias, rtol=1e-5, atol=1e-6)
    x = torch.randn(1, 3, *SMALL_HW)
    with torch.no_grad():
        torch.testing.assert_close(DeployModel(imported)(x), DeployModel(model)(x), rtol=1e-4, atol=1e-4)


def test_pnnx_ncnn_round_trip_within_fp16(tmp_path):
    pnnx = pytest.importorskip("pnnx")
    model = randomised(build_variant("nanodet-plus-m", num_classes=5, with_aux=False), seed=2)
    net = DeployModel(fuse_batchnorm(model)).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pnnx.export(net, str(tmp_path / "model.pt"), (torch.rand(1, 3, *SMALL_HW),))
    source = read_source(tmp_path / "model.ncnn.param")
    assert source.weight_format == "fp16"
    imported = import_graph(source, "nanodet-plus-m")
    expected, got = fused_parameters(model), folded_parameters(imported)
    for name, (weight, bias) in expected.items():
        # pnnx stores weights in fp16 (relative step 2 ** -11, values below 6.1e-5 flushed), biases in fp32
        torch.testing.assert_close(got[name][0], weight, rtol=1e-3, atol=6.2e-5)
        torch.testing.assert_close(got[name][1], bias, rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------- the official model

def test_official_ncnn_parity_on_real_images(official_model, official_ncnn, coco_val):
    """Imported model in PyTorch vs the official file in ncnn (fp32 arithmetic) at 416, stretch resize."""
    _, images = coco_val
    blobs = real_blobs(images, 3, (416, 416))
    official = open_source(read_source(official_ncnn), list(COCO_CLASSES), (416, 416), (8, 16, 32, 64), 7)
    with torch.no_grad():
        ours = DeployModel(official_model)(torch.from_numpy(blobs)).numpy()
    worst_cls = worst_box = 0.0
    for blob, our in zip(blobs, ours):
        theirs = official.forward(blob[None])  # class probabilities (the file itself outputs logits)
        assert theirs.shape == our.shape == (3598, 112)
        probs = theirs[:, :80]
        worst_cls = max(worst_cls, np.abs(probs - our[:, :80]).max())
        bins = [torch.from_numpy(o[:, 80:]).reshape(-1, 4, NUM_BINS).softmax(-1) for o in (theirs, our)]
        worst_box = max(worst_box, float((bins[0] - bins[1]).abs().max()))
    assert worst_cls < 2e-3 and worst_box < 2e-3, (worst_cls, worst_box)


def test_rebuilt_batchnorm_keeps_eval_function_and_tracks_batch_statistics(official_model, coco_train, coco_val):
    input_hw = (224, 224)
    calibration = torch.from_numpy(real_blobs(coco_train[1], 8, input_hw))
    other = torch.from_numpy(real_blobs(coco_val[1], 8, input_hw))
    rebuilt = copy.deepcopy(official_model)
    assert rebuild_batchnorm(rebuilt, [calibration[:5], calibration[5:]]) == 8
    assert rebuilt.aux_neck.reduce[0][1].running_var.eq(1).all()  # not on the inference path: untouched

    def output(model: GFLDetector, batch: torch.Tensor, train: bool) -> torch.Tensor:
        model = copy.deepcopy(model).train(train)
        with torch.no_grad():
            return DeployModel(model)(batch)

    # eval mode: the published function (measured max difference 5e-5 on box logits)
    folded_other = output(official_model, other, False)
    torch.testing.assert_close(output(rebuilt, other, False), folded_other, rtol=0, atol=1e-4)
    # train mode on the calibration images themselves: batch statistics == running statistics, layer by layer
    # (measured max difference 1e-6 on probabilities, 3e-5 on box logits)
    torch.testing.assert_close(output(rebuilt, calibration, True), output(rebuilt, calibration, False),
                               rtol=0, atol=1e-3)
    # train mode on 8 other images: batch statistics differ, yet far less than with identity BatchNorm
    # (measured mean |diff| at 224: class probabilities 0.0043 vs 0.0078, box logits 0.69 vs 8.4)
    rebuilt_diff = (output(rebuilt, other, True) - folded_other).abs()
    identity_diff = (output(official_model, other, True) - folded_other).abs()
    assert rebuilt_diff[..., :80].mean() < 0.7 * identity_diff[..., :80].mean()
    assert rebuilt_diff[..., 80:].mean() < 0.15 * identity_diff[..., 80:].mean()


def test_channel_moments_merge_batches_exactly():
    x = torch.randn(7, 5, 3, 4) * 3 + 10
    moments = _ChannelMoments()
    for part in (x[:2], x[2:3], x[3:]):
        moments.update(part)
    flat = x.double().transpose(0, 1).flatten(1)
    torch.testing.assert_close(moments.mean, flat.mean(1))
    torch.testing.assert_close(moments.variance, flat.var(1, unbiased=False))


# ---------------------------------------------------------------- refusals

def test_different_layer_count_is_reported():
    backbone = ShuffleNetV2(1.0)
    neck = GhostPAN(backbone.out_channels, 96)
    slim = GFLDetector(backbone, neck, DepthwiseGFLHead(80, 96, 4, 7, stacked_convs=1, kernel_size=5),
                       strides=(8, 16, 32, 64)).eval()
    with pytest.raises(GraphMismatch, match=r"the file has 102 convolutions.*the architecture 110 convolutions"
                                            r".*first difference: file layer .* is dense 1x1 s1 96->112"):
        import_graph(read_onnx(onnx_bytes(DeployModel(slim))), "nanodet-plus-m")


# ---------------------------------------------------------------- the command

def test_cli_import_writes_a_loadable_fine_tunable_checkpoint(official_ncnn, coco_train, tmp_path, capsys):
    bn_dir = tmp_path / "bn"
    bn_dir.mkdir()
    for image in sorted(coco_train[1].glob("*.jpg"))[:3]:
        (bn_dir / image.name).symlink_to(image)
    out = tmp_path / "plus_m.pt"
    assert main(["import", str(official_ncnn), "--out", str(out), "--size", "320", "--bn-images", str(bn_dir)]) == 0
    printed = capsys.readouterr().out
    assert "matched 110 convolutions" in printed and "measured on 3 images" in printed and "(ok)" in printed
    model, cfg, class_names = load_model(out, with_aux=True)
    assert cfg.model.arch == "nanodet-plus-m" and cfg.input_hw == (320, 320)
    assert len(class_names) == 80 and class_names[0] == "person"
    assert model.aux_head is not None
    blob = next(image_batches(sorted(bn_dir.iterdir())[:1], (320, 320), BGR_MEAN, BGR_STD)).numpy()
    theirs = open_source(read_source(official_ncnn), list(COCO_CLASSES), (320, 320), (8, 16, 32, 64), 7).forward(blob)
    with torch.no_grad():
        ours = DeployModel(model.eval())(torch.from_numpy(blob))[0].numpy()
    np.testing.assert_allclose(ours, theirs, atol=2e-3)


def test_cli_imports_a_fixed_size_onnx_with_its_own_class_names(tmp_path, capsys):
    model = randomised(build_variant("nanodet-plus-m", num_classes=3, with_aux=False), seed=3)
    onnx_file, names = tmp_path / "three.onnx", tmp_path / "names.txt"
    onnx_file.write_bytes(onnx_bytes(DeployModel(fuse_batchnorm(model))))
    names.write_text("cat\ndog\n\nbird\n")
    out = tmp_path / "three.pt"
    assert main(["import", str(onnx_file), "--out", str(out), "--class-names", str(names)]) == 0
    assert "(ok)" in capsys.readouterr().out  # parity checked with ONNX Runtime at the file's 64x64
    imported, cfg, class_names = load_model(out)
    assert class_names == ["cat", "dog", "bird"] and cfg.input_hw == (416, 416)
    x = torch.randn(1, 3, *SMALL_HW)
    with torch.no_grad():
        torch.testing.assert_close(imported(x), model(x), rtol=1e-4, atol=1e-4)


def test_cli_refuses_a_graph_that_matches_by_structure_but_computes_something_else(official_model, tmp_path,
                                                                                   capsys):
    """Keys see which layers feed which, not the order of a concatenation: the parity run catches that."""
    import onnx
    proto = onnx.load_from_string(onnx_bytes(DeployModel(fuse_batchnorm(official_model).drop_aux())))
    concat = next(n for n in proto.graph.node if n.op_type == "Concat" and "stages.0.0/" in n.name)
    concat.input[0], concat.input[1] = concat.input[1], concat.input[0]  # both branches have 58 channels
    onnx_file = tmp_path / "swapped.onnx"
    onnx.save(proto, str(onnx_file))
    assert main(["import", str(onnx_file), "--out", str(tmp_path / "x.pt")]) == 2
    assert "computes something else" in capsys.readouterr().err  # measured: differs by ~0.3 of the range
    assert not (tmp_path / "x.pt").exists()


def test_cli_rejects_a_class_list_of_the_wrong_length(official_ncnn, tmp_path, capsys):
    names = tmp_path / "names.txt"
    names.write_text("\n".join(f"thing{i}" for i in range(20)))
    code = main(["import", str(official_ncnn), "--out", str(tmp_path / "x.pt"), "--class-names", str(names)])
    err = capsys.readouterr().err
    assert code == 2 and "predicts 80 classes" in err and "has 20 names" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x.pt").exists()


def test_cli_rejects_unknown_file_types_and_missing_files(tmp_path, capsys):
    assert main(["import", str(tmp_path / "model.tflite"), "--out", str(tmp_path / "x.pt")]) == 2
    assert main(["import", str(tmp_path / "missing.param"), "--out", str(tmp_path / "x.pt")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert "expected an ncnn .param/.bin or an .onnx file" in err[0] and "ncnn file not found" in err[1]
