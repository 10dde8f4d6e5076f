"""End to end: notebook 03 in JupyterLab, driven by headless Chromium, as a person uses it.

Opens the notebook in a throwaway JupyterLab server (from this environment, so with the
settings ``make setup`` gives it) and checks the stored outputs say what the dashboard is
and show its plots after the notebook tests' check run. Runs
all cells as a person would (without ``NBTRAIN_FAST``, which the notebook tests set): the
dashboard appears, nothing trains, Train is ready at once. Checks the picture is shown no
wider than drawn and its texts are at least 9 pt as shown, and the diagnosis headings no
smaller than the text. Sets the learning rate through the slider's readout and the epochs
and batch size through their text boxes, presses Train, and waits until the plot image
changes and the diagnosis panel shows the findings of the new run, Run #1. Closes the
notebook without saving it and checks its bytes on disk did not change. A screenshot goes
to ``test-artifacts/`` (kept whether the test passes or fails). Run with ``pytest -m
browser tests/test_browser.py``; needs ``/usr/bin/chromium`` (Debian/Ubuntu: ``apt-get
install -y chromium``, or ``make browser-deps``) and the Python ``playwright`` package.
Without them the test is skipped with the reason, except under ``CI=true``, where it
fails: CI must not go green without the browser test.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest

from browser_helpers import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, REPO_ROOT, LabServer
from nbtrain.views.dashboard.layout import TEXT_FALLBACK

pytestmark = pytest.mark.browser

NOTEBOOK = "03_interactive_tuning.ipynb"
NEW_LR = "3.00e-5"  # what the test types into the LR slider's readout
RUN_HEADER = "Run #1: lr 3e-5, clip 2, patience 5 (completed)"  # ROUND1's controls at that LR
DOCMANAGER = "@jupyterlab/docmanager-extension:plugin"
MIN_TEXT_PX = 12.0  # 9 pt in CSS pixels (a point is 4/3 of a pixel)


@pytest.fixture(scope="module")
def lab(sync_api, tmp_path_factory):
    root = tmp_path_factory.mktemp("lab-root")
    shutil.copy(REPO_ROOT / "notebooks" / NOTEBOOK, root / NOTEBOOK)
    with pytest.MonkeyPatch.context() as env:
        env.delenv("NBTRAIN_FAST", raising=False)  # a person's Run All, not the notebook tests'
        server = LabServer(root_dir=root, home=tmp_path_factory.mktemp("lab-home"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def page(lab, sync_api):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1500, "height": 1100})
            page = context.new_page()
            page.set_default_timeout(60_000)
            yield page
        finally:
            browser.close()


def _screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path


def _run_all_cells(page) -> None:
    """Run > Run All Cells, once the kernel is idle; again if no cell started.

    On a crowded machine the kernel can report idle before it takes requests; then the
    first Run All leaves every cell as it was. A cell has started when its prompt shows
    ``[*]`` or an execution count other than the stored one.
    """
    page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for(timeout=120_000)
    prompts = ".jp-Notebook .jp-CodeCell .jp-InputPrompt"
    stored = page.locator(prompts).all_inner_texts()
    for _attempt in range(3):
        page.locator(".jp-Notebook .jp-Cell").first.click()  # focus the notebook
        page.locator(".lm-MenuBar-item", has_text="Run").first.click()
        page.locator(".lm-Menu-content .lm-Menu-item").get_by_text("Run All Cells", exact=True).click()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            now = page.locator(prompts).all_inner_texts()
            if any("*" in p for p in now) or now != stored:
                return
            page.wait_for_timeout(200)
    raise AssertionError("Run All Cells did not start a cell")


def _scroll_to(page, selector: str, timeout_s: float = 120.0):
    """Scroll the notebook down (a wheel, as a person does) until ``selector`` is on the page,
    and into view. JupyterLab renders only the cells near the view."""
    target = page.locator(selector).first
    deadline = time.monotonic() + timeout_s
    page.locator(".jp-NotebookPanel").first.hover()
    while target.count() == 0:
        if time.monotonic() > deadline:
            raise AssertionError(f"{selector} did not appear within {timeout_s:.0f} s")
        page.mouse.wheel(0, 500)
        page.wait_for_timeout(300)
    target.scroll_into_view_if_needed()
    return target


def _set_text(page, control: str, value: str) -> None:
    box = page.locator(f".nbtrain-control-{control} input")
    box.fill(value)
    box.press("Enter")


def _close_without_saving(page) -> None:
    """File > Close Tab, and Discard when JupyterLab asks whether to save (a person who does not save)."""
    page.locator(".lm-MenuBar-item", has_text="File").first.click()
    page.locator(".lm-Menu-content .lm-Menu-item").get_by_text("Close Tab", exact=True).click()
    page.locator(".jp-Dialog button", has_text="Discard").click()
    page.locator(".jp-NotebookPanel").wait_for(state="detached", timeout=30_000)


def _check_readable(page) -> None:
    """The picture is never shown wider than drawn; its key text is at least 9 pt as shown."""
    from nbtrain.views.livepanel import FONT
    from nbtrain.views.liveplot import DPI, FIGSIZE

    plot = page.locator("img.nbtrain-plot")
    page.wait_for_function("() => { const i = document.querySelector('img.nbtrain-plot'); "
                           "return i && i.complete && i.naturalWidth > 0; }")
    natural, shown = plot.evaluate("img => [img.naturalWidth, img.getBoundingClientRect().width]")
    assert natural == round(FIGSIZE[0] * DPI), natural
    assert shown <= natural + 0.5, f"the picture is enlarged: {natural} px drawn, {shown:.0f} px shown"
    text_px = FONT * DPI / 72 * shown / natural
    assert text_px >= MIN_TEXT_PX, f"key and tick labels {text_px:.1f} px as shown ({shown:.0f} of {natural} px)"


def _heading_sizes(page) -> list:
    """``(tag, text, font px, text font px)`` of each heading in the diagnosis panel."""
    return page.locator(".nbtrain-diagnosis").evaluate(
        """panel => {
            const size = el => parseFloat(getComputedStyle(el).fontSize);
            const text = size(panel.querySelector('p, li, td'));
            return [...panel.querySelectorAll('h1, h2, h3, h4, h5, h6')].map(
                h => [h.tagName, h.textContent.trim(), size(h), text]);
        }""")


def test_run_all_then_train_then_close_leaves_the_notebook_as_it_was(lab, page):
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    notebook = lab.root_dir / NOTEBOOK
    stored = notebook.read_bytes()
    assert lab.setting(DOCMANAGER, "autosave") is False, (
        "JupyterLab autosaves here: `make setup` puts notebooks/jupyterlab-settings.json into "
        ".venv/share/jupyter/lab/settings/overrides.d/ so that using a notebook does not rewrite it")
    try:
        page.goto(lab.url(f"lab/tree/{NOTEBOOK}"))
        # Before anything runs, the stored outputs say what the dashboard is and show its plots
        # after the notebook tests' check run, as a picture.
        _scroll_to(page, f"text={TEXT_FALLBACK[:40]}")
        _scroll_to(page, ".jp-RenderedImage img").wait_for(state="visible")
        assert "Error displaying widget" not in page.content()
        _run_all_cells(page)

        # Run All shows the dashboard and trains nothing: the API check skips, Train is ready.
        _scroll_to(page, "text=Skipped: this check trains.", timeout_s=300)
        _scroll_to(page, ".nbtrain-dashboard")
        status = page.locator(".nbtrain-status")
        status.get_by_text("Ready. Set the controls and press Train.").wait_for(timeout=60_000)
        assert page.locator("button.nbtrain-button-train").is_enabled()
        assert "Run #" not in page.locator(".nbtrain-diagnosis").inner_text()
        _check_readable(page)
        old_src = page.locator("img.nbtrain-plot").get_attribute("src")

        # Set the learning rate through the slider's editable readout; a short run (1 epoch
        # of batches of 64) keeps the test quick.
        readout = page.locator(".nbtrain-control-lr .widget-readout")
        readout.click()
        page.keyboard.press("Control+A")
        page.keyboard.type(NEW_LR)
        page.keyboard.press("Enter")
        _set_text(page, "epochs", "1")
        _set_text(page, "batch_size", "64")
        page.wait_for_timeout(500)  # let the kernel receive the values

        page.locator("button.nbtrain-button-train").click()
        clicked = time.monotonic()
        page.wait_for_function(
            "old => { const img = document.querySelector('img.nbtrain-plot'); return img && img.src !== old; }",
            arg=old_src,
            timeout=60_000,
        )
        first_update = time.monotonic() - clicked
        # The button comes back once the run ended and its final picture is drawn.
        page.locator("button.nbtrain-button-train:not([disabled])").wait_for(timeout=600_000)
        diagnosis = page.locator(".nbtrain-diagnosis", has_text=RUN_HEADER)  # the user's first run is Run #1
        diagnosis.wait_for(timeout=600_000)
        text = diagnosis.inner_text()
        assert "Training diagnosis" in text, text[:2000]
        assert "Expectation" in text, text[:2000]
        assert "#1 lr" not in text, "the run's number is repeated in its header"
        headings = _heading_sizes(page)
        assert len(headings) >= 3, headings
        small = [h for h in headings if h[2] < h[3]]
        assert not small, f"headings smaller than the text: {small}"
        assert page.locator(".nbtrain-status", has_text="Run #1 completed: 1 epoch(s), ").count() == 1
        assert page.locator(".nbtrain-error").inner_text().strip() == ""
        assert "Error displaying widget" not in page.content()
        log = page.locator(".nbtrain-log textarea").input_value()
        assert re.search(r"^epoch 0\b[^\n]*: train ", log, re.MULTILINE), log[-2000:]  # numbered from 0
        _check_readable(page)
        print(f"first plot update {first_update:.2f} s after clicking Train")
        _screenshot(page, "browser_dashboard.png")

        _close_without_saving(page)
        page.wait_for_timeout(1000)
        assert notebook.read_bytes() == stored, "using the notebook changed it on disk"
    finally:
        _screenshot(page, "browser_dashboard_end.png")
    assert not errors, errors
