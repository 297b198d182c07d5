"""Inference backends of the torch-free core: ONNX Runtime (.onnx) and ncnn (.param + .bin).

Every backend takes the normalised blob [1, 3, H, W] float32 and returns the model output [N, C + 4 * (reg_max + 1)]
float32 whose class columns are probabilities. Backend packages are imported only when a model is opened, so this
module imports without any of them. A PyTorch checkpoint (.pt) runs through ``nanogfl.engine.torch_backend``,
outside the core.
"""
from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import numpy as np

from ..contract import CLASS_ACTIVATIONS, NCNN_PRECISIONS, SIZE_MULTIPLE, check_input_size
from ..errors import UserError
from .metadata import ModelMeta, metadata_path
from .ncnn_support import NCNN_PRECISION_OPTIONS, check_ncnn_size, extract_blobs
from .official_meta import infer_official_meta

SUFFIX_BACKENDS = {".onnx": "onnxruntime", ".param": "ncnn", ".pt": "torch", ".pth": "torch"}
BACKEND_SUFFIXES = {"onnxruntime": ".onnx", "ncnn": ".param", "torch": ".pt"}
INSTALL_HINTS = {
    "onnxruntime": "the onnxruntime package is not installed: pip install 'nanogfl[deploy]' "
                   "(or pip install onnxruntime)",
    "ncnn": "the ncnn package is not installed: pip install 'nanogfl[deploy]' (or pip install ncnn)",
    "torch": "running a .pt checkpoint needs PyTorch: pip install 'nanogfl[train]' torch==2.13.0 "
             "(or export the model to ONNX/ncnn and run that without torch)",
}
PRECISION_CHOICES = ("auto", *NCNN_PRECISIONS)  # "auto" (or None): the metadata's ncnn_precision


class ModelInputError(UserError, ValueError):
    """The blob given to a backend does not have the shape the model was opened for."""


def sigmoid_inplace(values: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # exp(-x) overflows to inf for very negative logits; 1 / inf = 0 is right
        np.negative(values, out=values)
        np.exp(values, out=values)
    values += 1.0
    np.reciprocal(values, out=values)
    return values


def join_split_outputs(outputs: list[np.ndarray], meta: ModelMeta) -> np.ndarray:
    """Per-level (class [HW, C], box [HW, 4 * (reg_max + 1)]) pairs -> one [N, C + 4 * (reg_max + 1)] array."""
    widths = (meta.num_classes, 4 * (meta.reg_max + 1))
    levels = []
    for level, pair in enumerate(zip(outputs[0::2], outputs[1::2])):
        columns = []
        for kind, array, width in zip(("class", "box"), pair, widths):
            if array.size % width:
                raise ModelInputError(f"split output {kind} blob of stride {meta.strides[level]} has shape "
                                      f"{array.shape}, not [rows, {width}]")
            columns.append(array.reshape(-1, width))
        if len(columns[0]) != len(columns[1]):
            raise ModelInputError(f"stride {meta.strides[level]}: {len(columns[0])} class rows but "
                                  f"{len(columns[1])} box rows")
        levels.append(np.concatenate(columns, axis=1))
    return np.concatenate(levels, axis=0)


class Backend:
    """A model opened for inference: ``forward(blob) -> output [N, C + 4 * (reg_max + 1)]`` with class
    probabilities, whatever the file's own class activation. ``meta`` describes the model; subclasses
    implement ``run`` (the bare network)."""

    name = "backend"
    precision = "fp32"  # the arithmetic it runs in (ncnn: chosen when opened; the others: always fp32)

    def __init__(self, path: Path, meta: ModelMeta, files: list[Path]) -> None:
        self.path = path
        self.meta = meta
        self.files = files  # every file the model needs (for the size on disk)
        self.output_name = meta.output_name

    @property
    def size_mb(self) -> float:
        return sum(f.stat().st_size for f in self.files) / 1e6

    def check_input(self, blob: np.ndarray) -> None:
        if self.meta.keep_ratio_scale:  # a keep-ratio model takes each image at its own padded size
            if blob.ndim != 4 or blob.shape[:2] != (1, 3) or blob.shape[2] % SIZE_MULTIPLE or \
                    blob.shape[3] % SIZE_MULTIPLE:
                raise ModelInputError(f"{self.path.name}: input blob has shape {tuple(blob.shape)}; expected "
                                      f"(1, 3, H, W) with H and W multiples of {SIZE_MULTIPLE}")
            return
        expected = (1, 3, *self.meta.input_hw)
        if tuple(blob.shape) != expected:
            raise ModelInputError(f"{self.path.name}: input blob has shape {tuple(blob.shape)}, the model was opened "
                                  f"for {expected} (input size is (height, width) {tuple(self.meta.input_hw)})")

    def extract(self, blob: np.ndarray, names: list[str]) -> list[np.ndarray]:
        """The named output blobs of the bare network for ``blob``."""
        raise NotImplementedError

    def raw_outputs(self, blob: np.ndarray) -> list[np.ndarray]:
        """Every output blob the metadata names (``split_outputs``, else the one output), as the model file
        computes them: what another family's decoder (``runtime/peers``) takes."""
        self.check_input(blob)
        return self.extract(np.ascontiguousarray(blob, dtype=np.float32), self.meta.split_outputs or [self.output_name])

    def run(self, blob: np.ndarray) -> np.ndarray:
        """The bare network: blob -> output [N, D] exactly as the model file computes it (split outputs joined)."""
        if not self.meta.split_outputs:
            return self.extract(blob, [self.output_name])[0]
        return join_split_outputs(self.extract(blob, self.meta.split_outputs), self.meta)

    def forward(self, blob: np.ndarray) -> np.ndarray:
        if self.meta.layout != "gfl":
            raise UserError(f"{self.path.name}: a {self.meta.layout} model has no GFL output; decode its raw_outputs "
                            f"(runtime/peers, as Detector does)")
        self.check_input(blob)
        output = self.run(np.ascontiguousarray(blob, dtype=np.float32))
        if output.ndim == 3 and output.shape[0] == 1:
            output = output[0]
        if self.meta.class_activation == "none":
            if not output.flags.writeable:
                output = output.copy()
            sigmoid_inplace(output[:, :self.meta.num_classes])
        return output


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"

    def __init__(self, path: Path, meta: ModelMeta, threads: int = 0) -> None:
        try:
            import onnxruntime
        except ImportError:
            raise UserError(INSTALL_HINTS["onnxruntime"]) from None
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = max(threads, 0)
        options.inter_op_num_threads = 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types for unreadable models
            raise UserError(f"{path}: ONNX Runtime cannot load the model ({type(e).__name__}: {e})") from None
        model_input = self.session.get_inputs()[0]
        self.input_name = model_input.name
        fixed_hw = model_input.shape[2:]
        if all(isinstance(v, int) for v in fixed_hw) and tuple(fixed_hw) != tuple(meta.input_hw):
            raise UserError(f"{path}: the model has a fixed input size {tuple(fixed_hw)} (height, width) but "
                            f"{tuple(meta.input_hw)} was asked for; export the model again for that size")
        super().__init__(path, meta, [path])
        outputs = [o.name for o in self.session.get_outputs()]
        missing = [name for name in meta.split_outputs if name not in outputs]
        if missing:
            raise UserError(f"{path}: the model has no output {missing[0]!r} (it has {outputs}); fix split_outputs "
                            f"in {metadata_path(path)}")
        self.output_name = outputs[0]

    def extract(self, blob: np.ndarray, names: list[str]) -> list[np.ndarray]:
        return self.session.run(names, {self.input_name: blob})


class NcnnBackend(Backend):
    name = "ncnn"

    def __init__(self, path: Path, meta: ModelMeta, threads: int = 0, precision: str = "fp32") -> None:
        """``precision`` "fp32" turns off ncnn's fp16/bf16 storage and arithmetic, "fp16" keeps them on."""
        try:
            import ncnn
        except ImportError:
            raise UserError(INSTALL_HINTS["ncnn"]) from None
        self._ncnn = ncnn
        weights = path.with_suffix(".bin")
        if not weights.is_file():
            raise UserError(f"{path}: ncnn weights not found (expected {weights} beside the .param)")
        self.net = ncnn.Net()
        self.net.opt.use_vulkan_compute = False
        self.precision = precision
        for option, value in NCNN_PRECISION_OPTIONS[precision].items():
            setattr(self.net.opt, option, value)
        if threads > 0:
            self.net.opt.num_threads = threads
        if self.net.load_param(str(path)) != 0:
            raise UserError(f"{path}: ncnn cannot parse this .param file")
        if self.net.load_model(str(weights)) != 0:
            raise UserError(f"{weights}: ncnn cannot load these weights (truncated, or not for {path.name}?)")
        wanted = [("input", "input_name", meta.input_name, self.net.input_names())]
        wanted += [("output", "split_outputs" if meta.split_outputs else "output_name", name, self.net.output_names())
                   for name in meta.split_outputs or [meta.output_name]]
        for kind, key, name, names in wanted:
            if name not in names:
                raise UserError(f"{path}: the model has no {kind} blob {name!r} (it has {list(names)}); "
                                f"fix {key} in {metadata_path(path)}")
        super().__init__(path, meta, [path, weights])

    def extract(self, blob: np.ndarray, names: list[str]) -> list[np.ndarray]:
        return extract_blobs(self._ncnn, self.net, self.meta.input_name, blob, names, str(self.path))


def resolve_model_path(path: str | Path, backend: str | None = None) -> tuple[Path, str]:
    """The model file and backend to use. Asking for another backend than the file's suffix implies looks
    for the sibling file of that backend (``model.onnx`` with ``ncnn`` -> ``model.param``)."""
    path = Path(path)
    implied = SUFFIX_BACKENDS.get(path.suffix.lower())
    if implied is None:
        raise UserError(f"{path}: unknown model type {path.suffix!r}; expected .onnx (ONNX Runtime), "
                        f".param (ncnn) or .pt (PyTorch checkpoint)")
    if backend is not None and backend not in BACKEND_SUFFIXES:
        raise UserError(f"unknown backend {backend!r}; choose from {', '.join(BACKEND_SUFFIXES)}")
    if backend is not None and backend != implied:
        sibling = path.with_suffix(BACKEND_SUFFIXES[backend])
        if not sibling.is_file():
            raise UserError(f"{path}: backend {backend} needs a {BACKEND_SUFFIXES[backend]} model, and {sibling} "
                            f"does not exist")
        path, implied = sibling, backend
    if not path.is_file():
        raise UserError(f"model not found: {path}")
    return path, implied


def resolve_precision(path: Path, kind: str, precision: str | None, meta: ModelMeta | None = None) -> str:
    """The arithmetic a model of backend ``kind`` runs in: ``precision`` (None or "auto": the metadata's). Only
    ncnn (and a checkpoint on CUDA) has a choice; asking ONNX Runtime for fp16 is refused."""
    if precision not in (None, *PRECISION_CHOICES):
        raise UserError(f"unknown precision {precision!r}; choose from {', '.join(PRECISION_CHOICES)}")
    if kind == "torch":  # fp16 on CUDA, checked by the torch backend
        return "fp16" if precision == "fp16" else "fp32"
    if kind != "ncnn":
        if precision == "fp16":
            raise UserError(f"{path}: --precision fp16 applies to ncnn models (and checkpoints on CUDA); {kind} runs "
                            f"in fp32 on the CPU")
        return "fp32"
    chosen = precision if precision not in (None, "auto") else meta.ncnn_precision if meta else "fp32"
    if chosen not in NCNN_PRECISIONS:
        raise UserError(f"{metadata_path(path)}: ncnn_precision must be one of {', '.join(NCNN_PRECISIONS)}, "
                        f"got {chosen!r}")
    return chosen


def load_meta(path: Path) -> ModelMeta:
    meta_file = metadata_path(path)
    not_official = ""
    if not meta_file.is_file() and path.suffix == ".param":
        meta, what = infer_official_meta(path)
        if meta is not None:
            warnings.warn(f"{path.name}: no {meta_file.name} beside it; inferred the metadata of an {what} "
                          f"(write {meta_file.name} to override)", stacklevel=2)
            return meta
        not_official = f" (not an official NanoDet-Plus file whose metadata can be inferred: {what})"
    if not meta_file.is_file():
        raise UserError(f"{path}: no metadata file {meta_file} beside the model (class names, input size, ...)"
                        f"{not_official}; models exported by `nanogfl export` have one; `nanogfl peer-meta` writes "
                        f"one for YOLOX, YOLO-FastestV2 and PicoDet models; for others write it (see ModelMeta)")
    try:
        return ModelMeta.load(meta_file)
    except (ValueError, TypeError) as e:
        raise UserError(str(e)) from None


def open_model(path: str | Path, threads: int = 0, backend: str | None = None,
               input_hw: tuple[int, int] | None = None, meta: ModelMeta | None = None,
               precision: str | None = None) -> Backend:
    """Open an ONNX or ncnn model for inference. ``threads`` 0 keeps the library default; ``input_hw`` overrides
    the input size (a model must have been exported for it, except an ONNX file with a dynamic input and an
    ncnn graph that infers its reshapes or has per-level outputs); ``meta`` replaces the metadata file beside
    the model; ``precision`` (ncnn: "fp32" or "fp16") defaults to the metadata's ``ncnn_precision``."""
    path, kind = resolve_model_path(path, backend)
    if input_hw is not None:
        input_hw = check_input_size(input_hw)
    if kind == "torch":
        raise UserError(f"{path}: a .pt checkpoint runs with PyTorch (nanogfl.engine.torch_backend), not in the "
                        f"torch-free runtime; {INSTALL_HINTS['torch']}")
    meta = meta if meta is not None else load_meta(path)
    precision = resolve_precision(path, kind, precision, meta)
    if input_hw is not None:
        if kind == "ncnn":
            check_ncnn_size(path, meta, input_hw)
        meta = dataclasses.replace(meta, input_hw=input_hw)
    if meta.class_activation not in CLASS_ACTIVATIONS:
        raise UserError(f"{metadata_path(path)}: class_activation must be one of {', '.join(CLASS_ACTIVATIONS)}, "
                        f"got {meta.class_activation!r}")
    if kind == "onnxruntime":
        return OnnxRuntimeBackend(path, meta, threads)
    return NcnnBackend(path, meta, threads, precision)
