"""The house rules, read from the source: imports run one way, the core and the apps need no torch, and
the predict app loads no dataset reader, config schema or YAML."""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "nanogfl"

# Lowest first. A module may import from a lower layer or from its own top-level package, nothing else.
LAYERS: list[set[str]] = [
    {"errors"},  # stdlib only
    {"fileio", "contract"},
    {"image_io"},  # numpy + OpenCV
    {"runtime"},  # the torch-free core
    {"config"},  # the typed schema (PyYAML)
    {"data", "model"},
    {"confusion", "plots"},  # numpy (+ matplotlib, train extra, for plots)
    {"evaluation", "checkpoint"},
    {"apps", "engine", "exporter", "importer"},
    {"cli"},
    {"__main__", "__init__"},
]
# Torch-free code: never imports torch (not even inside a function), nor anything outside this set.
TORCH_FREE = {"errors", "fileio", "contract", "image_io", "runtime", "config", "evaluation", "apps", "confusion",
              "plots", "data.base", "data.coco", "data.voc", "data.yolo", "data.sources", "data.summary",
              "data.subset", "data.transforms",
              "data.__init__"}
CORE = {"errors", "fileio", "contract", "image_io", "runtime"}  # what the runtime may reach: no YAML either


def module_name(path: Path, root: Path) -> str:
    return ".".join(path.relative_to(root).with_suffix("").parts)


def imports_of(path: Path, root: Path) -> list[tuple[str, int]]:
    """(absolute module, line) for every import in the file, relative ones resolved, at any nesting level."""
    package_parts = [root.name, *path.relative_to(root).parent.parts]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package_parts[:len(package_parts) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            found += [(target if node.module else f"{target}.{alias.name}", node.lineno) for alias in node.names]
    return found


def top(name: str) -> str:
    return name.split(".")[0]


def layer_of(module: str) -> int:
    for index, members in enumerate(LAYERS):
        if top(module) in members:
            return index
    raise AssertionError(f"nanogfl.{module} is in no layer of {__file__}: add it to LAYERS")


def in_set(module: str, names: set[str]) -> bool:
    return module in names or top(module) in names or module.rsplit(".", 1)[0] in names


def internal(target: str) -> str | None:
    return target[len("nanogfl."):] if target.startswith("nanogfl.") else None


def layer_violations(root: Path) -> list[str]:
    wrong = []
    for path in sorted(root.rglob("*.py")):
        here = module_name(path, root)
        for target, line in imports_of(path, root):
            inner = internal(target)
            if inner is not None and top(inner) != top(here) and layer_of(inner) >= layer_of(here):
                wrong.append(f"nanogfl/{path.relative_to(root)}:{line} imports {target}")
    return wrong


def torch_violations(root: Path) -> list[str]:
    wrong = []
    for path in sorted(root.rglob("*.py")):
        here = module_name(path, root)
        if not in_set(here, TORCH_FREE):
            continue
        for target, line in imports_of(path, root):
            inner = internal(target)
            if top(target) == "torch" or (inner is not None and not in_set(inner, TORCH_FREE)):
                wrong.append(f"nanogfl/{path.relative_to(root)}:{line} imports {target}")
            elif in_set(here, CORE) and (top(target) == "yaml" or (inner is not None and not in_set(inner, CORE))):
                wrong.append(f"nanogfl/{path.relative_to(root)}:{line} (core) imports {target}")
    return wrong


def test_every_module_sits_in_a_layer():
    for path in PACKAGE.rglob("*.py"):
        layer_of(module_name(path, PACKAGE))


def test_imports_run_one_way():
    wrong = layer_violations(PACKAGE)
    assert not wrong, "imports against the layer order:\n" + "\n".join(wrong)


def test_torch_free_code_never_reaches_torch_and_the_core_no_yaml():
    wrong = torch_violations(PACKAGE)
    assert not wrong, "\n".join(wrong)


def test_the_checks_catch_a_wrong_import(tmp_path):
    root = tmp_path / "nanogfl"
    (root / "runtime").mkdir(parents=True)
    (root / "runtime" / "x.py").write_text("from ..config import Config\n\ndef f():\n    import torch\n")
    (root / "apps").mkdir()
    (root / "apps" / "y.py").write_text("from nanogfl.engine import train\n")
    assert layer_violations(root) == ["nanogfl/apps/y.py:1 imports nanogfl.engine",
                                      "nanogfl/runtime/x.py:1 imports nanogfl.config"]
    assert torch_violations(root) == ["nanogfl/apps/y.py:1 imports nanogfl.engine",
                                      "nanogfl/runtime/x.py:1 (core) imports nanogfl.config",
                                      "nanogfl/runtime/x.py:4 imports torch"]


TORCH_BLOCKED = r"""
import importlib, json, pkgutil, sys
sys.modules["torch"] = None  # from here on `import torch` (and torch.anything) raises ImportError
import nanogfl.apps, nanogfl.runtime
names = sorted(["nanogfl.runtime." + m.name for m in pkgutil.iter_modules(nanogfl.runtime.__path__)]
               + ["nanogfl.apps." + m.name for m in pkgutil.iter_modules(nanogfl.apps.__path__)]
               + ["nanogfl.cli", "nanogfl.evaluation", "nanogfl.image_io", "nanogfl.contract", "nanogfl.fileio"])
for name in names:
    importlib.import_module(name)
print("RESULT" + json.dumps(names))
"""

PREDICT_ONLY = r"""
import json, sys
import nanogfl.apps.predict, nanogfl.cli.predict
loaded = sorted(m for m in sys.modules if m == "yaml" or m.startswith(("nanogfl.data", "nanogfl.config", "torch")))
print("RESULT" + json.dumps(loaded))
"""


def run_python(script: str) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(PACKAGE.parent) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.split("RESULT", 1)[1])


def test_core_and_apps_import_with_torch_blocked():
    names = run_python(TORCH_BLOCKED)
    for expected in ("nanogfl.runtime.backends", "nanogfl.runtime.detector", "nanogfl.apps.predict",
                     "nanogfl.apps.demo", "nanogfl.apps.benchmark", "nanogfl.apps.mjpeg"):
        assert expected in names


def test_predict_app_loads_no_dataset_reader_config_or_yaml():
    assert run_python(PREDICT_ONLY) == []


@pytest.mark.parametrize("module", ["nanogfl.cli.common"])
def test_cli_helpers_are_torch_free_at_import(module):
    assert run_python(f"import json, sys\nsys.modules['torch'] = None\nimport {module}\nprint('RESULT[]')") == []
