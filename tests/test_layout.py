"""The package's shape: light import, one-way imports between layers, small modules and functions.

README, "Architecture", describes the layers; these tests keep the code to it.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import nbtrain

PACKAGE = Path(nbtrain.__file__).resolve().parent
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60

# layer -> the layers its modules may import (besides itself)
ALLOWED = {
    "files": {"measures"},
    "measures": set(),
    "reference": set(),
    "training": {"files", "measures", "reference"},
    "logs": {"files", "measures", "training"},
    "recording": {"files", "measures", "training"},
    "integrations": {"files", "measures", "training", "recording"},
    "diagnosis": {"files", "measures", "training", "logs"},
    "probes": {"files", "measures", "training", "diagnosis"},
    "views": {"files", "measures", "training", "logs", "diagnosis", "reference"},
    "sweeps": {"files", "measures", "training", "diagnosis", "reference"},
    "rounds": {"files", "measures", "training", "reference", "diagnosis", "probes", "sweeps"},
    "demo": {"files", "measures", "training", "diagnosis", "views"},
    "cli": {"files", "measures", "training", "logs", "diagnosis", "reference", "probes", "views", "sweeps", "rounds",
            "demo"},
    "__main__": {"cli"},
    "__init__": set(),
}
# modules that a layer may not import even though their layer is allowed
FORBIDDEN = {"diagnosis": {"nbtrain.training.trainer"}}


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _layer(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _dotted(path: Path) -> str:
    rel = path.relative_to(PACKAGE).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(["nbtrain", *parts])


def _imports(path: Path) -> set[str]:
    """Absolute names of the nbtrain modules that ``path`` imports (at any depth in the file)."""
    here = _dotted(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if node.module is None:  # ``from .. import measures``: the names are the modules
                found.update(f"{target}.{a.name}" for a in node.names)
            elif target.startswith("nbtrain"):
                found.add(target)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("nbtrain"))
    return found


def test_import_nbtrain_loads_no_heavy_library():
    code = (
        "import sys, nbtrain\n"
        "heavy = ('torch', 'matplotlib', 'ipywidgets', 'ray', 'tensorboard', 'pandas', 'lightning', 'transformers',"
        " 'keras')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_public_name_resolves_and_none_is_private():
    for name in nbtrain.__all__:
        assert getattr(nbtrain, name) is not None, name
        assert not name.startswith("_") or name == "__version__"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        nbtrain.nope  # noqa: B018


def test_imports_run_one_way():
    wrong = []
    for path in _modules():
        layer = _layer(path)
        allowed = ALLOWED[layer] | {layer}
        for target in _imports(path):
            parts = target.split(".")
            target_layer = parts[1] if len(parts) > 1 else "__init__"
            if target_layer == "__init__" or target == "nbtrain":
                if layer not in ("__init__", "cli"):
                    wrong.append(f"{path.relative_to(PACKAGE)} imports the top-level package")
                continue
            if target_layer not in allowed and target_layer in ALLOWED:
                wrong.append(f"{path.relative_to(PACKAGE)} ({layer}) imports {target}")
            if any(target == f or target.startswith(f + ".") for f in FORBIDDEN.get(layer, ())):
                wrong.append(f"{path.relative_to(PACKAGE)} ({layer}) imports {target}")
    assert not wrong, "\n".join(wrong)


def test_modules_and_functions_stay_small():
    too_long = []
    for path in _modules():
        text = path.read_text(encoding="utf-8")
        n = len(text.splitlines())
        if n > MAX_MODULE_LINES:
            too_long.append(f"{path.relative_to(PACKAGE)}: {n} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name}: {length} lines")
    assert not too_long, "\n".join(too_long)
