"""The exported official NanoDet-Plus-m weights keep their COCO AP through ONNX Runtime and ncnn."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("ncnn")
pytest.importorskip("onnxsim")
pytest.importorskip("pnnx")

from nanogfl.checkpoint import Checkpoint, save_checkpoint  # noqa: E402
from nanogfl.config import Config  # noqa: E402
from nanogfl.exporter.pipeline import ExportOptions, export_checkpoint  # noqa: E402


def test_exported_official_weights_keep_coco_ap(coco_val, official_ncnn, tmp_path):
    """AP on 50 val images at 320: ONNX (fp32) within 0.002 and ncnn fp16 within 0.004 of PyTorch. The imported
    weights are fp16-exact, so they get a 1e-3 relative jitter first: fp16 storage then really rounds them."""
    from nanogfl.engine.torch_backend import TorchBackend
    from nanogfl.evaluation import evaluate_coco
    from nanogfl.importer.convert import import_graph, read_source
    from nanogfl.runtime.coco_names import COCO_CLASSES

    ann_file, image_dir = coco_val
    model = import_graph(read_source(official_ncnn), "nanodet-plus-m")
    with torch.no_grad():
        generator = torch.Generator().manual_seed(0)
        for p in model.parameters():
            p.mul_(1 + 1e-3 * torch.randn(p.shape, generator=generator))
    weights = tmp_path / "official_320.pt"
    save_checkpoint(weights, Checkpoint(model=model.state_dict(), config=Config().to_dict(),
                                        class_names=list(COCO_CLASSES), aux_trained=False))
    result = export_checkpoint(weights, tmp_path / "out", ExportOptions(input_hw=(320, 320), threads=1,
                                                                        verify_images=str(image_dir)))
    assert all(p.ok for p in result.parity)
    models = [TorchBackend(weights, threads=1)] + [f for f in result.files if f.suffix in (".onnx", ".param")]
    ap = {(m.path if hasattr(m, "path") else m).suffix: evaluate_coco(m, ann_file, image_dir, threads=1,
                                                                       max_images=50)["AP"] for m in models}
    print(f"AP@320 on 50 images: {ap}")
    assert ap[".pt"] > 0.25  # real weights
    assert abs(ap[".onnx"] - ap[".pt"]) <= 0.002
    assert abs(ap[".param"] - ap[".pt"]) <= 0.004
