"""The conda environment and pyproject.toml must name the same dependencies; the notebooks ship
with the outputs of a run."""

import json
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"pytorch": "torch"}  # conda-forge name -> PyPI name


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower()


def _pyproject_requirements() -> dict[str, str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = data["project"]
    reqs = list(project["dependencies"])
    for extra in ("notebooks", "dev"):
        reqs += [r for r in project["optional-dependencies"][extra] if not r.startswith("nbtrain")]
    return {_name(r): r.replace(" ", "") for r in reqs}


def _conda_requirements() -> dict[str, str]:
    out = {}
    text = (ROOT / "environment.yml").read_text()
    for line in text.split("\ndependencies:\n", 1)[1].splitlines():
        m = re.match(r"^  - ([A-Za-z0-9_.\-]+)([<>=!~].*)?$", line.split("#")[0].rstrip())
        if m and m.group(1) not in ("python", "pip"):
            name = CONDA_NAMES.get(m.group(1), m.group(1)).lower()
            out[name] = name + (m.group(2) or "")
    return out


def test_environment_yml_and_pyproject_name_the_same_dependencies():
    py, conda = _pyproject_requirements(), _conda_requirements()
    assert sorted(py) == sorted(conda)
    assert py == conda, "version bounds differ between pyproject.toml and environment.yml"


def test_environment_installs_the_package_itself():
    assert "-e ." in (ROOT / "environment.yml").read_text()


def test_console_script():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert data["project"]["scripts"]["nbtrain"] == "nbtrain.cli:main"


def test_python_floor_is_true_and_matches_the_environment():
    # The tests import tomllib (3.11+), so the declared floor must be at least 3.11, and the
    # conda environment pins the floor itself.
    floor = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    m = re.fullmatch(r">=(\d+)\.(\d+)", floor)
    assert m, f"requires-python should be a plain floor like '>=3.11', got {floor!r}"
    version = (int(m.group(1)), int(m.group(2)))
    assert version >= (3, 11), f"requires-python {floor!r} is below 3.11, but the tests import tomllib"
    pinned = re.search(r"^  - python=(\d+)\.(\d+)\s*$", (ROOT / "environment.yml").read_text(), re.M)
    assert pinned and (int(pinned.group(1)), int(pinned.group(2))) == version


NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
MAX_NOTEBOOK_BYTES = 1_500_000  # stored outputs kept small: figures at a modest dpi


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_stores_the_outputs_of_a_run(path):
    # A reader sees results without running anything: every code cell was executed (in order,
    # from one kernel), the notebook shows output, no output is an error, and the file stays small.
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    counts = [c["execution_count"] for c in code]
    assert None not in counts, f"{path.name}: {counts.count(None)} code cell(s) never executed"
    assert counts == sorted(counts) and len(set(counts)) == len(counts), f"{path.name}: cells ran out of order: {counts}"
    assert any(c["outputs"] for c in code), f"{path.name}: no stored output"
    errors = [o.get("ename") for c in code for o in c["outputs"] if o["output_type"] == "error"]
    assert not errors, f"{path.name}: stored errors {errors}"
    size = path.stat().st_size
    assert size < MAX_NOTEBOOK_BYTES, f"{path.name} is {size:,} bytes (limit {MAX_NOTEBOOK_BYTES:,})"
