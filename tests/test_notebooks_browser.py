"""Every notebook, as a reader first sees it: opened in JupyterLab in headless Chromium, not run.

For each ``notebooks/*.ipynb`` (a glob: a new notebook is checked as soon as it lands), a copy
is opened in a throwaway JupyterLab server (``browser_helpers.LabServer``, cells rendered all at
once rather than as they scroll into view) and the test checks that

- the notebook stores outputs: at least one code cell has some, and every code cell that stores
  outputs shows an output area on the page;
- no output holds an error: no stored ``error`` output (an exception's ``ename``), no traceback
  in any stored or shown output, no exception name in an output shown as standard error
  (``application/vnd.jupyter.stderr``, which is also how JupyterLab shows error outputs), no
  widget that failed to display;
- opening it changed nothing on disk: the copy's bytes are the same afterwards (and the
  notebook in ``notebooks/`` is never opened).

Nothing is executed: the kernel JupyterLab starts for an opened notebook stays idle and is shut
down. A picture of the whole notebook goes to ``test-artifacts/notebooks/<name>.png``, pass or
fail. Needs ``/usr/bin/chromium`` and the ``playwright`` package (``make test`` installs both);
without them the test is skipped, except under ``CI=true``, where it fails.
"""

from __future__ import annotations

import importlib
import io
import json
import re
import shutil
from pathlib import Path

import pytest

from browser_helpers import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, REPO_ROOT, LabServer

NOTEBOOKS = sorted(p.name for p in (REPO_ROOT / "notebooks").glob("*.ipynb"))
SHOTS = ARTIFACTS / "notebooks"
CRAFTED = "crafted_error.ipynb"  # not in notebooks/: shows that the page check sees an error
STDERR = "application/vnd.jupyter.stderr"
TRACEBACK = "Traceback (most recent call last)"
EXCEPTION = re.compile(r"\b[A-Z]\w*(Error|Exception)\b")
# every cell on the page at once, so each can be checked and the picture is whole
LAB_SETTINGS = {"@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"}}


def stored_outputs(path: Path) -> tuple[list[bool], list[str]]:
    """For each code cell of the notebook file: whether it stores outputs; and the errors they hold."""
    cells = [c for c in json.loads(path.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code"]
    errors = []
    for n, cell in enumerate(cells):
        for out in cell.get("outputs", []):
            if out["output_type"] == "error":
                errors.append(f"code cell {n}: {out.get('ename')}: {out.get('evalue')}")
                continue
            text = "".join(out.get("text", "")) + "".join(out.get("data", {}).get("text/plain", ""))
            if TRACEBACK in text or (out.get("name") == "stderr" and EXCEPTION.search(text)):
                errors.append(f"code cell {n}, {out.get('name', out['output_type'])}: {text[:300]!r}")
    return [bool(c.get("outputs")) for c in cells], errors


def crafted_notebook() -> dict:
    """A notebook whose one code cell stores an error output (and a traceback on standard error)."""
    nbformat = importlib.import_module("nbformat")
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("int('x')", execution_count=1)
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stderr", text=f"{TRACEBACK}:\n  File \"<x>\", line 1\n"),
        nbformat.v4.new_output("error", ename="ValueError", evalue="invalid literal for int() with base 10: 'x'",
                               traceback=["\x1b[0;31mValueError\x1b[0m: invalid literal for int() with base 10: 'x'"]),
    ]
    nb.cells = [nbformat.v4.new_markdown_cell("# crafted"), cell]
    return nb


def test_stored_errors_are_found(tmp_path):
    path = tmp_path / "crafted.ipynb"
    path.write_text(json.dumps(crafted_notebook()), encoding="utf-8")
    has_outputs, errors = stored_outputs(path)
    assert has_outputs == [True]
    stderr_text = "".join(crafted_notebook()["cells"][1]["outputs"][0]["text"])
    assert errors == [f"code cell 0, stderr: {stderr_text!r}",
                      "code cell 0: ValueError: invalid literal for int() with base 10: 'x'"]


@pytest.fixture(scope="module")
def lab(sync_api, tmp_path_factory):
    """A JupyterLab server whose root holds a copy of every notebook, and the crafted one."""
    root = tmp_path_factory.mktemp("notebooks")
    for name in NOTEBOOKS:
        shutil.copy(REPO_ROOT / "notebooks" / name, root / name)
    (root / CRAFTED).write_text(json.dumps(crafted_notebook()), encoding="utf-8")
    server = LabServer(root_dir=root, home=tmp_path_factory.mktemp("lab-home"), user_settings=LAB_SETTINGS)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def page(lab, sync_api):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport={"width": 1400, "height": 1600}).new_page()
            page.set_default_timeout(120_000)
            yield page
        finally:
            browser.close()


def whole_notebook_picture(page, path: Path) -> None:
    """Save the notebook's scrolling panel, screen by screen, stacked into one PNG."""
    from PIL import Image

    panel = page.locator(".jp-NotebookPanel .jp-WindowedPanel-outer").first
    box = panel.bounding_box()
    # the bottom of the last cell, in the panel's scrolled content (below it: the scroll-past-end space)
    total, step = panel.evaluate(
        """el => { const cells = el.querySelectorAll('.jp-Cell'), last = cells[cells.length - 1];
                   const bottom = last.getBoundingClientRect().bottom - el.getBoundingClientRect().top + el.scrollTop;
                   return [Math.ceil(bottom) + 16, el.clientHeight]; }"""
    )
    pieces, top = [], 0
    while top < total:
        shown = panel.evaluate("(el, y) => { el.scrollTop = y; return el.scrollTop; }", top)
        page.wait_for_timeout(200)
        piece = Image.open(io.BytesIO(page.screenshot(clip=box)))
        # a screen the panel could not scroll to in full overlaps the one before; the last one ends at total
        pieces.append(piece.crop((0, top - shown, piece.width, min(piece.height, total - shown))))
        top = shown + step
    whole = Image.new("RGB", (pieces[0].width, sum(p.height for p in pieces)), "white")
    y = 0
    for piece in pieces:
        whole.paste(piece, (0, y))
        y += piece.height
    path.parent.mkdir(parents=True, exist_ok=True)
    whole.save(path)


def _open(page, lab, name: str, n_code: int) -> None:
    page.goto(lab.url(f"doc/tree/{name}"))
    page.wait_for_function("n => document.querySelectorAll('.jp-Notebook .jp-CodeCell').length === n", arg=n_code)
    page.wait_for_function("() => [...document.querySelectorAll('.jp-OutputArea-output img')].every(i => i.complete)")
    page.wait_for_timeout(1000)  # markdown, tables and plots settle


def _shown_outputs(page) -> list[list[dict]]:
    """Per code cell on the page: its output areas' mime type and text."""
    return page.evaluate(
        """() => [...document.querySelectorAll('.jp-Notebook .jp-CodeCell')].map(cell =>
             [...cell.querySelectorAll('.jp-OutputArea-output')].map(out =>
               ({mime: out.getAttribute('data-mime-type') || '', text: out.innerText || ''})))"""
    )


def _shown_errors(shown: list[list[dict]]) -> list[str]:
    errors = []
    for n, outputs in enumerate(shown):
        for out in outputs:
            text = out["text"]
            if TRACEBACK in text or "Error displaying widget" in text or (out["mime"] == STDERR and EXCEPTION.search(text)):
                errors.append(f"code cell {n} ({out['mime']}): {text[:300]!r}")
    return errors


@pytest.mark.browser
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_shows_its_stored_outputs_without_errors(name, lab, page):
    path = lab.root_dir / name
    before = path.read_bytes()
    has_outputs, stored_errors = stored_outputs(path)
    assert any(has_outputs), f"{name} stores no output: run it and save it with its outputs"
    assert not stored_errors, f"{name} stores errors:\n" + "\n".join(stored_errors)
    page_errors: list[str] = []

    def on_error(exc) -> None:
        page_errors.append(str(exc))

    page.on("pageerror", on_error)
    try:
        _open(page, lab, name, len(has_outputs))
        shown = _shown_outputs(page)
    finally:
        whole_notebook_picture(page, SHOTS / (Path(name).stem + ".png"))
        page.remove_listener("pageerror", on_error)
    missing = [n for n, (stored, out) in enumerate(zip(has_outputs, shown)) if stored and not out]
    assert not missing, f"{name}: code cells {missing} store outputs that the page does not show"
    assert sum(len(out) for out in shown) >= sum(has_outputs)
    errors = _shown_errors(shown)
    assert not errors, f"{name} shows errors:\n" + "\n".join(errors)
    assert not page_errors, page_errors
    page.goto("about:blank")
    lab.shutdown_kernels()
    assert path.read_bytes() == before, f"opening {name} in JupyterLab changed the file"


@pytest.mark.browser
def test_the_page_check_sees_an_error_output(lab, page):
    _open(page, lab, CRAFTED, 1)
    errors = _shown_errors(_shown_outputs(page))
    page.goto("about:blank")
    lab.shutdown_kernels()
    assert len(errors) == 2, errors  # the traceback on stderr, and the error output
    assert all(e.startswith(f"code cell 0 ({STDERR}): ") for e in errors), errors
    assert "ValueError" in errors[1]
