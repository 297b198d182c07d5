"""nanogfl.runtime imports and runs image -> detections with torch made unimportable (as on a Raspberry Pi)."""
import configparser
import importlib.metadata
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from nanogfl.runtime.backends import open_model
from nanogfl.runtime.detector import Detector

REPO = Path(__file__).resolve().parents[2]

TORCH_BLOCK = """import sys
sys.modules["torch"] = None  # from here on `import torch` (and torch.anything) raises ImportError
"""
TORCH_FREE_SCRIPT = r"""
import importlib, io, json, pkgutil, sys, contextlib
import nanogfl.apps, nanogfl.runtime
modules = sorted(info.name for package in (nanogfl.runtime, nanogfl.apps)
                 for info in pkgutil.iter_modules(package.__path__))
for package in ("runtime", "apps"):
    for info in pkgutil.iter_modules(getattr(nanogfl, package).__path__):
        importlib.import_module(f"nanogfl.{package}.{info.name}")
import nanogfl.cli, nanogfl.evaluation
import cv2
from nanogfl.errors import UserError
from nanogfl.runtime.backends import open_model
from nanogfl.runtime.detector import Detector

models, image_path, checkpoint = json.loads(sys.argv[1])
image = cv2.imread(image_path)
result = {"modules": modules, "detections": {}}
for model in models:
    detector = Detector(open_model(model, threads=1), score_threshold=0.05)
    detections = detector(image)
    result["detections"][model] = [detections.boxes.tolist(), detections.scores.tolist(), detections.labels.tolist()]
try:
    open_model(checkpoint)
except UserError as e:
    result["checkpoint_error"] = str(e)
stderr = io.StringIO()
with contextlib.redirect_stderr(stderr):
    result["val_pt_status"] = nanogfl.cli.main(["val", "--model", checkpoint, "--ann", "x.json", "--images", "."])
result["val_pt_error"] = stderr.getvalue()
stdout = io.StringIO()
with contextlib.redirect_stdout(stdout):
    result["predict_status"] = nanogfl.cli.main(["predict", "--model", models[0], "--source", image_path, "--json",
                                                 "--threads", "1"])
result["predict_lines"] = stdout.getvalue().splitlines()
result["torch_modules"] = sorted(m for m, v in sys.modules.items() if m.split(".")[0] == "torch" and v is not None)
print("RESULT" + json.dumps(result))
"""


# Every command that needs torch, as a torch-free install meets it: (argv, what the hint must name).
TORCH_COMMANDS_SCRIPT = r"""
import contextlib, io, json
import nanogfl.cli

results = []
for argv in json.loads(sys.argv[1]):
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        status = nanogfl.cli.main(argv)
    results.append([status, stderr.getvalue()])
print("RESULT" + json.dumps(results))
"""


def run_without_torch(script: str, argument: object) -> object:
    """Run ``script`` in a fresh interpreter where ``import torch`` fails; it prints RESULT + JSON, returned here
    (``argument`` reaches it as JSON in sys.argv[1])."""
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    completed = subprocess.run([sys.executable, "-c", TORCH_BLOCK + script, json.dumps(argument)],
                               capture_output=True, text=True, timeout=120, env=env, cwd=REPO)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.split("RESULT", 1)[1])


def test_runtime_runs_without_torch(official_model, tiny_onnx, coco_images):
    image_path = str(coco_images[2])
    models = [str(official_model), str(tiny_onnx)]
    result = run_without_torch(TORCH_FREE_SCRIPT, [models, image_path, str(tiny_onnx.with_suffix(".pt"))])
    assert result["torch_modules"] == []
    for expected in ("backends", "decode", "nms", "postprocess", "preprocess", "detector", "predict", "demo",
                     "benchmark", "sources", "draw", "mjpeg", "metadata", "track", "kalman", "assignment"):
        assert expected in result["modules"]
    assert "pip install" in result["checkpoint_error"] and "torch" in result["checkpoint_error"]
    assert result["val_pt_status"] == 2 and "needs PyTorch: pip install" in result["val_pt_error"]
    assert result["val_pt_error"].count("\n") == 1
    # the same detections as in this (torch-enabled) process, for ncnn and ONNX Runtime alike
    image = cv2.imread(image_path)
    for model in models:
        detections = Detector(open_model(model, threads=1), score_threshold=0.05)(image)
        boxes, scores, labels = result["detections"][model]
        np.testing.assert_allclose(np.asarray(boxes, np.float32).reshape(-1, 4), detections.boxes, rtol=1e-6, atol=1e-4)
        np.testing.assert_allclose(scores, detections.scores, rtol=1e-6)
        np.testing.assert_array_equal(labels, detections.labels)
    assert len(result["detections"][models[0]][1]) > 5  # the real model finds objects in a real photo
    assert result["predict_status"] == 0
    record = json.loads(result["predict_lines"][0])
    assert record["source"] == image_path and record["detections"]


def test_every_torch_command_gives_the_install_hint(tiny_onnx, official_ncnn, coco_val, tmp_path):
    checkpoint = str(tiny_onnx.with_suffix(".pt"))
    config = str(REPO / "configs" / "nanodet-plus-m_416.yml")
    ann, images = map(str, coco_val)
    commands = [  # (argv, the pip extra the hint names)
        (["val", "--model", checkpoint], "train"),
        (["val", "--model", checkpoint, "--ann", ann, "--images", images], "train"),
        (["predict", "--model", checkpoint, "--source", images], "train"),
        (["benchmark", "--model", checkpoint], "train"),
        (["info", config], "train"),
        (["info", "--model", checkpoint], "train"),
        (["train", config, "--out", str(tmp_path / "run")], "train"),
        (["import", "--model", str(official_ncnn), "--out", str(tmp_path / "imported.pt")], "export"),
        (["export", "--model", checkpoint, "--out", str(tmp_path / "export")], "export"),
    ]
    results = run_without_torch(TORCH_COMMANDS_SCRIPT, [argv for argv, _ in commands])
    for (argv, extra), (status, stderr) in zip(commands, results):
        assert status == 2, (argv, stderr)
        assert stderr.count("\n") == 1 and stderr.startswith(f"nanogfl {argv[0]}: error: "), (argv, stderr)
        assert f"pip install 'nanogfl[{extra}]' torch==" in stderr, (argv, stderr)
        assert "export" in stderr.split("torch==", 1)[1], (argv, stderr)  # ... or run an exported model
    assert not (tmp_path / "run").exists() and not (tmp_path / "imported.pt").exists()


def requirement_name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[(]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_deploy_extra_pulls_in_no_torch():
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    direct = [r for r in config["options"]["install_requires"].splitlines() +
              config["options.extras_require"]["deploy"].splitlines() if r.strip() and not r.strip().startswith("#")]
    seen, pending = set(), [requirement_name(r) for r in direct]
    while pending:  # follow the installed packages' own requirements (not their optional extras)
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        pending += [requirement_name(r) for r in requires if "extra ==" not in r]
    assert {"onnxruntime", "ncnn", "numpy"} <= seen
    assert not {name for name in seen if name.startswith("torch") or name in ("onnxsim", "pnnx", "onnx")}, seen
