"""The dashboard at the Python level: controls -> config, runs in a thread, Stop, bad values.

A tiny regression model and a few dozen samples keep each run well under a second; the
plots are rendered small. Nothing here needs a browser (see test_browser.py for that).
"""

from __future__ import annotations

import re
import sys
import threading

import pytest
import torch
from torch import nn

import nbtrain
from nbtrain import presets
from nbtrain.training.callbacks import Callback
from nbtrain.training.config import TrainConfig
from nbtrain.training.devices import resolve_device
from nbtrain.views.dashboard import Dashboard
from nbtrain.training.records import epoch_line
from nbtrain.views.dashboard.layout import TEXT_FALLBACK
from nbtrain.views.dashboard.report import heading, markdown_to_html, running_status
from nbtrain.views.dashboard.session import RunRecord
from nbtrain.views.liveplot import render_png

PNG = b"\x89PNG"
WAIT = 60  # seconds; generous, the machine is shared


def _data(n_train=32, n_val=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n_train + n_val, 4, generator=g)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]])
    return (x[:n_train], y[:n_train]), (x[n_train:], y[n_train:])


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))


def _dash(model=None, **kwargs) -> Dashboard:
    train, val = _data()
    kwargs.setdefault("figsize", (6.0, 2.0))
    kwargs.setdefault("refresh_interval", 0.05)
    return Dashboard(model if model is not None else _model(), train, val, **kwargs)


def _set(d: Dashboard, **values) -> None:
    for name, value in values.items():
        d.controls[name].value = value


def _finish(d: Dashboard):
    assert d.wait(WAIT), "the run did not finish in time"
    assert not d.running
    return d.runs[-1]


class Sleepy(Callback):
    """Slows each step down, so the refresher gets to draw during the run."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def on_step_end(self, trainer, row):
        threading.Event().wait(self.seconds)


class Gate(Callback):
    """Holds the run at step ``at`` until the test lets it go."""

    def __init__(self, at: int) -> None:
        self.at = at
        self.reached = threading.Event()
        self.proceed = threading.Event()

    def on_step_end(self, trainer, row):
        if row["step"] == self.at:
            self.reached.set()
            self.proceed.wait(WAIT)


class Flat(nn.Module):
    """Output does not depend on the weights: the validation loss never improves."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 1)

    def forward(self, x):  # (B, 4) -> (B, 1)
        return self.lin(x) * 0.0


# -- controls and config -------------------------------------------------------------------
def test_controls_start_from_round1_and_presets_load_exactly():
    d = _dash()
    assert d.config() == presets.ROUND1
    d.round2_button.click()
    assert d.config() == presets.ROUND2
    d.round1_button.click()
    assert d.config() == presets.ROUND1
    d.fallback.value = "cosine_warm_restarts"
    d.fallback_button.click()
    assert d.config() == presets.COSINE_WARM_RESTARTS
    d.fallback.value = "no_normalization"
    d.fallback_button.click()
    assert d.config() == presets.NO_NORMALIZATION  # fields without a control come from the preset


def test_controls_have_the_documented_widgets_and_ranges():
    import ipywidgets as W

    d = _dash()
    assert isinstance(d.controls["lr"], W.FloatLogSlider)
    assert (d.controls["lr"].min, d.controls["lr"].max) == (-6, -3)
    assert isinstance(d.controls["scheduler_patience"], W.IntSlider)
    assert (d.controls["scheduler_patience"].min, d.controls["scheduler_patience"].max) == (0, 10)
    assert set(d.controls) >= {"lr", "clip_on", "grad_clip", "scheduler_patience", "scheduler", "batch_size",
                               "grad_accum_steps", "epochs", "seed"}
    assert set(dict(d.controls["scheduler"].options).values()) >= {"plateau", "cosine_warm_restarts"}


def test_edited_controls_make_a_config_without_the_preset_name():
    d = _dash()
    _set(d, lr=3e-5, scheduler_patience=2)
    c = d.config()
    assert (c.lr, c.scheduler_patience, c.grad_clip, c.name) == (3e-5, 2, 2.0, "")
    d.controls["clip_on"].value = False
    assert d.config().grad_clip is None
    assert d.controls["grad_clip"].disabled


def test_slider_values_are_rounded_to_what_the_readout_shows():
    d = _dash()
    d.controls["lr"].value = 10 ** -4.3  # what a drag along the log scale produces
    assert d.config().lr == pytest.approx(5.01e-5, rel=0, abs=1e-12)


# -- a run -----------------------------------------------------------------------------
def test_run_uses_exactly_the_chosen_settings():
    d = _dash()
    _set(d, lr=3e-4, grad_clip=1.5, scheduler_patience=2, scheduler="plateau", batch_size=4,
         grad_accum_steps=2, epochs=2, seed=3)
    before = d.redraw_count
    assert d.train() is True
    run = _finish(d)
    c = run.config
    assert (c.lr, c.grad_clip, c.scheduler_patience, c.scheduler) == (3e-4, 1.5, 2, "plateau")
    assert (c.batch_size, c.grad_accum_steps, c.epochs, c.seed) == (4, 2, 2, 3)
    assert run.status == "completed"
    assert len(run.history.epochs) == 2
    assert len(run.history.steps) == 2 * 4  # 32 samples / (4 x 2) per optimizer step
    assert d.redraw_count > before
    assert bytes(d.plot.value).startswith(PNG)
    assert d.status.startswith("Run #1 completed: 2 epoch(s), 8 steps")
    assert d.error == ""
    assert epoch_line(run.history.epochs[-1], 2) in d.log  # the trainer's own line for epoch 1 (of 0-1)
    assert d.controls is not None and not d.train_button.disabled and d.stop_button.disabled


def test_plots_are_redrawn_during_a_multi_epoch_run():
    # 12 steps of at least 0.3 s: long enough for several redraws on a crowded machine,
    # where one redraw can take a few tenths of a second.
    d = _dash(callbacks=[Sleepy(0.3)])
    try:
        assert d.drawing.plotter is not None and d.drawing.plotter.wait_ready(60)
        d.pacer.share = 1.0  # no budget: redraw as often as refresh_interval allows
        _set(d, epochs=3, lr=1e-3)
        before = d.redraw_count
        d.train()
        run = _finish(d)
        during = [t for t in d.redraw_times[before:] if t < d.redraw_times[-1]]
        assert len(during) >= 2, f"only {len(during)} redraws while training; CPU per redraw {d.render_seconds}"
        assert d.redraw_count - before >= 3
        assert len(run.history.epochs) == 3
    finally:
        d.close()


def test_stop_mid_run_keeps_a_consistent_partial_history():
    gate = Gate(at=5)
    d = _dash(callbacks=[gate])
    _set(d, epochs=5, batch_size=8)  # 4 steps per epoch
    d.train()
    assert gate.reached.wait(WAIT)
    assert d.running
    d.stop()
    gate.proceed.set()
    run = _finish(d)
    h = run.history
    assert run.status == "stopped"
    assert [r["step"] for r in h.steps] == list(range(6))  # ended right after the step it was in
    assert [r["epoch"] for r in h.steps] == [0, 0, 0, 0, 1, 1]
    assert [r["epoch"] for r in h.epochs] == [0]  # only complete epochs have a row
    assert h.epochs[0]["n_steps"] == 4
    assert "stopped" in d.status
    assert "Run #1" in d.diagnosis_html


def test_stop_before_the_first_step_gives_an_empty_stopped_run():
    building, release = threading.Event(), threading.Event()

    def make():  # holds the run while its model is built: before the trainer exists
        building.set()
        release.wait(WAIT)
        return _model()

    d = _dash(model=make)
    d.train()
    assert building.wait(WAIT)
    d.stop()  # Stop pressed while the run is still preparing its data and model
    release.set()
    run = _finish(d)
    assert run.status == "stopped"
    assert run.history.steps == [] and run.history.epochs == []
    assert d.status.startswith("Run #1 stopped: 0 epoch(s), 0 steps")
    assert "No complete epoch, so there is nothing to diagnose yet." in d.diagnosis_html


# -- device and precision --------------------------------------------------------------------
def test_device_and_precision_controls_offer_what_the_machine_has(monkeypatch):
    from nbtrain.training import devices

    d = _dash()
    assert d.controls["device"].options == ("auto", *devices.available())
    assert [v for _label, v in d.controls["precision"].options] == ["32", "bf16-mixed", "16-mixed"]
    assert (d.config().device, d.config().precision) == ("auto", "32")
    _set(d, device="cpu", precision="bf16-mixed")
    assert (d.config().device, d.config().precision, d.config().name) == ("cpu", "bf16-mixed", "")
    monkeypatch.setattr(devices, "cuda_count", lambda: 2)  # a machine with two GPUs, as the controls see it
    assert _dash().controls["device"].options == ("auto", "cpu", "cuda:0", "cuda:1", *(
        ("mps",) if devices.mps_available() else ()))


def test_a_run_says_which_device_and_precision_it_used():
    d = _dash()
    _set(d, epochs=1, device="cpu")
    d.train()
    run = _finish(d)
    assert run.config.device == "cpu" and run.history.meta["device"] == "cpu"
    assert d.status.startswith("Run #1 completed: 1 epoch(s), 4 steps in ")
    assert "(cpu, precision 32)" in d.status
    assert "--- run #1 lr " in d.log and " on cpu, precision 32 ---" in d.log
    _set(d, device="auto", precision="bf16-mixed")  # "auto": the CPU in CI, a GPU where there is one
    d.train()
    run = _finish(d)
    auto = str(resolve_device("auto"))
    assert (run.config.device, run.config.precision, run.history.meta["device"]) == ("auto", "bf16-mixed", auto)
    assert f"({auto}, precision bf16-mixed)" in d.status and f" on {auto}, precision bf16-mixed ---" in d.log


def test_a_device_the_machine_lacks_is_refused_before_the_run(monkeypatch):
    from nbtrain.training import devices

    monkeypatch.setattr(devices, "cuda_count", lambda: 0)
    d = _dash()
    d.load(presets.ROUND1.replace(device="cuda:1"))  # e.g. a config written on a GPU machine
    assert d.controls["device"].value == "cuda:1" and d.config().device == "cuda:1"
    assert d.train() is False
    assert d.error.startswith("Not started: device 'cuda:1' is not available here: this machine has cpu")
    assert d.runs == [] and not d.running


def test_bad_values_are_refused_with_the_message_and_keep_earlier_runs():
    d = _dash()
    _set(d, epochs=1)
    d.train()
    _finish(d)
    picture, runs, log = bytes(d.plot.value), list(d.runs), d.log
    d.controls["grad_clip"].value = 0.0
    assert d.train() is False
    assert d.error == "Not started: grad_clip must be > 0, got 0.0"
    with pytest.raises(ValueError, match="grad_clip must be > 0, got 0.0"):
        d.config()
    d.controls["grad_clip"].value = 2.0
    d.controls["batch_size"].value = 0
    assert d.train() is False
    assert "batch_size must be >= 1, got 0" in d.error
    assert "color:#b00020" in d.error_widget.value
    assert d.runs == runs and bytes(d.plot.value) == picture and d.log == log and not d.running
    d.controls["batch_size"].value = 8
    assert d.train() is True  # a good value clears the message
    assert d.error == ""
    _finish(d)
    assert len(d.runs) == 2


def test_a_second_train_while_running_is_refused():
    gate = Gate(at=0)
    d = _dash(callbacks=[gate])
    d.train()
    assert gate.reached.wait(WAIT)
    assert d.train() is False
    assert "still going" in d.error
    d.stop()
    gate.proceed.set()
    _finish(d)
    assert len(d.runs) == 1


def test_lr_cuts_are_logged_and_diagnosis_shown():
    d = _dash(model=Flat())
    _set(d, epochs=3, scheduler_patience=0, lr=1e-4)
    d.train()
    run = _finish(d)
    assert [r["lr"] for r in run.history.epochs][:2] == [1e-4, pytest.approx(1e-5)]
    assert "Learning rate reduced: 0.0001 -> 1e-05 (validation loss:" in d.log
    html = d.diagnosis_html
    assert html.startswith(heading(0, "Run #1: lr 1e-4, clip 2, patience 0 (completed)"))  # the number once
    assert "Diagnosis failed:" not in html and "Expectations failed:" not in html, html
    assert heading(1, "Training diagnosis") in html  # nbtrain.diagnose's report, under the run's header
    assert "<table>" in html  # the expectation verdicts


def test_each_run_starts_from_the_same_weights_and_the_users_model_is_untouched():
    model = _model()
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    d = _dash(model=model)
    _set(d, epochs=1, lr=1e-3)
    for _ in range(2):
        d.train()
        _finish(d)
    a, b = d.runs
    assert a.history.steps == b.history.steps
    assert a.model is not b.model and a.model is not model
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in weights.items())


def test_a_model_function_is_called_after_seeding():
    made = []

    def make():
        m = nn.Linear(4, 1)
        made.append(m.weight.detach().clone())
        return m

    d = _dash(model=make)
    _set(d, epochs=1, seed=1)
    d.train()
    _finish(d)
    _set(d, seed=2)
    d.train()
    _finish(d)
    _set(d, seed=1)
    d.train()
    _finish(d)
    assert torch.equal(made[0], made[2]) and not torch.equal(made[0], made[1])


def test_a_failing_run_is_reported_and_the_session_survives():
    calls = []

    def make():  # the second model has the wrong input width
        calls.append(1)
        return nn.Linear(4 if len(calls) == 1 else 3, 1)

    d = _dash(model=make)
    _set(d, epochs=1)
    d.train()
    _finish(d)
    good, picture = d.runs, bytes(d.plot.value)
    d.train()
    assert d.wait(WAIT)
    assert d.error.startswith("Run #2 failed: RuntimeError:")
    assert "Run #2 failed" in d.status and "Run #2 failed" in d.diagnosis_html
    assert d.runs == good and bytes(d.plot.value) == picture
    assert not d.train_button.disabled and d.stop_button.disabled


def test_clear_history_forgets_earlier_runs():
    d = _dash()
    _set(d, epochs=1)
    d.train()
    _finish(d)
    n = d.redraw_count
    d.clear_button.click()
    assert d.runs == [] and d.redraw_count == n + 1
    d.train()
    run = _finish(d)
    assert d.runs == [run]


def test_display_shows_the_widget_tree():
    assert nbtrain.Dashboard is Dashboard
    d = nbtrain.Dashboard(_model(), *_data(), figsize=(6.0, 2.0))
    bundle = d._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == d.widget.model_id
    assert bundle["text/plain"] == TEXT_FALLBACK  # what a notebook opened without running it shows


# -- input checks ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"train_data": _data()[0]}, ValueError, "give both train_data and val_data"),
        ({"train_data": _data()[0], "val_data": _data()[1]}, ValueError, "train_data was given without a model"),
        ({"model": 3}, TypeError, "model must be a torch.nn.Module or a function returning one, got int"),
        ({"config": {"lr": 1e-5}}, TypeError, "config must be a TrainConfig, got dict"),
        ({"refresh_interval": -1}, ValueError, "refresh_interval must be a number of seconds >= 0, got -1"),
        ({"callbacks": [print]}, TypeError, "callbacks must be nbtrain.Callback instances"),
    ],
)
def test_constructor_checks_its_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        Dashboard(**kwargs)


def test_load_refuses_an_lr_outside_the_slider():
    d = _dash()
    with pytest.raises(ValueError, match=r"lr must be within the slider's range 1e-06 to 0.001, got 0.01"):
        d.load(TrainConfig(lr=1e-2))
    assert d.config() == presets.ROUND1


# -- drawing helpers ---------------------------------------------------------------------
def test_render_png_draws_empty_and_partial_runs():
    assert render_png([], figsize=(4, 2)).startswith(PNG)
    steps = [{"epoch": 0, "step": i, "loss": 1.0, "grad_norm": 3.0, "clipped": True, "clip_factor": 0.6, "lr": 1e-5}
             for i in range(5)]
    snap = [(1, "#1", presets.ROUND2, steps, [], 10, True), (2, "#2", TrainConfig(grad_clip=None), steps, [], 0, False)]
    assert render_png(snap, figsize=(4, 2)).startswith(PNG)


MARKDOWN = "# Title\n\n| a | b |\n|---|---|\n| 1 | <b> |\n"


def test_markdown_to_html_makes_tables_and_headings_no_smaller_than_text():
    import mistune  # noqa: F401  (JupyterLab, in the dev extras, brings it)

    out = markdown_to_html(MARKDOWN + "\n## Part\n\ntext\n\n### Detail\n")
    assert "<table>" in out
    found = re.findall(r'<(h[4-6]) style="font-size:([0-9.]+)em[^>]*>(\w+)</h[4-6]>', out)
    assert [(tag, text) for tag, _size, text in found] == [("h4", "Title"), ("h5", "Part"), ("h6", "Detail")]
    # Browsers draw a plain h5 or h6 smaller than the text around it; these never are.
    assert [float(size) for _tag, size, _text in found] == [1.2, 1.1, 1.0]
    assert heading(0, "Run #1").startswith('<h3 style="font-size:1.3em')


def test_markdown_to_html_without_mistune_shows_escaped_text(monkeypatch):
    monkeypatch.setitem(sys.modules, "mistune", None)  # import mistune now raises ImportError
    out = markdown_to_html(MARKDOWN)
    assert out.startswith("<pre") and "# Title" in out and "&lt;b&gt;" in out and "<table>" not in out


# -- the plot helper process ---------------------------------------------------------------
def test_plots_come_from_the_helper_process_and_fall_back_when_it_dies():
    d = _dash(callbacks=[Sleepy(0.02)])
    try:
        plotter = d.drawing.plotter
        assert plotter is not None and plotter.wait_ready(60)
        _set(d, epochs=2, lr=1e-3)
        d.train()
        _finish(d)
        assert d.plots_in_helper and plotter.renders > 0, "no redraw went through the helper"
        plotter._proc.kill()
        plotter._proc.wait()
        d.train()
        _finish(d)
        assert not d.plots_in_helper and d.drawing.plotter is None
        assert "not running" in d.plot_note
        assert bytes(d.plot.value).startswith(PNG)
        assert len(d.runs) == 2
    finally:
        d.close()


def test_plot_process_can_be_switched_off():
    d = _dash(plot_process=False)
    assert not d.plots_in_helper and d.plot_note == "plot_process=False"
    d.train()
    _finish(d)
    assert bytes(d.plot.value).startswith(PNG)
    d.close()


def test_a_run_leaves_the_plot_helper_a_core_and_restores_torch_threads(monkeypatch):
    import os

    import torch

    seen = []

    class Threads(Callback):
        def on_train_begin(self, trainer):
            seen.append(torch.get_num_threads())

    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    original = torch.get_num_threads()
    torch.set_num_threads(2)  # torch takes both (pretended) cores
    d = _dash(callbacks=[Threads()])
    try:
        assert d.drawing.plotter is not None and d._train_threads() == 1
        _set(d, epochs=1)
        d.train()
        _finish(d)
        assert seen == [1], "the run should train on one thread"
        assert "training on 1 torch thread(s) instead of 2" in d.log
        assert torch.get_num_threads() == 2, "the setting is put back"
        d.threads = None
        assert d._train_threads() is None
        d.threads = "auto"
        torch.set_num_threads(1)
        assert d._train_threads() is None  # a core is already free
    finally:
        d.close()
        torch.set_num_threads(original)
    with pytest.raises(ValueError, match=r"threads must be 'auto', None or an int >= 1, got 0"):
        _dash(threads=0)


# -- the status line and labels ------------------------------------------------------------------
def test_the_status_line_numbers_epochs_from_0_and_labels_say_the_run_number_once():
    record = RunRecord(index=2, config=presets.ROUND1, device="cpu")
    assert running_status(record) == ""  # before the first step
    record.steps_per_epoch = 500
    record.steps = [{}] * 1750  # 3 epochs and a half done
    text = running_status(record)
    assert text.startswith("Run #2: epoch 3 (of 0-6), 1,750 steps done, ") and text.endswith("(cpu, precision 32)")
    record.steps = [{}] * 3500  # the last step: still epoch 6, never "epoch 7"
    assert running_status(record).startswith("Run #2: epoch 6 (of 0-6), ")
    assert record.label == "#2 lr 2e-5, clip 2, patience 5" and record.settings == "lr 2e-5, clip 2, patience 5"
    other = RunRecord(index=3, config=presets.COSINE_WARM_RESTARTS.replace(grad_clip=None, lr=3.16e-4))
    assert other.label == "#3 lr 3.16e-4, clip off, cosine_warm_restarts"


# -- how often it redraws -----------------------------------------------------------------------
class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_redraws_are_spaced_by_what_they_cost():
    from nbtrain.views.dashboard import DRAW_SHARE, RedrawPacer

    clock = FakeClock()
    pacer = RedrawPacer(0.5, share=0.03, window=3, clock=clock)
    assert DRAW_SHARE == 0.03
    assert pacer.wait() == 0.0 and pacer.interval() == 0.5  # nothing measured yet: the floor
    pacer.began()
    pacer.record(0.002, 0.028)  # 30 ms of CPU in all: the next may begin 1 s after this one began
    assert pacer.interval() == pytest.approx(1.0)
    clock.now += 0.4
    assert pacer.wait() == pytest.approx(0.6)
    clock.now += 0.6
    assert pacer.wait() == 0.0
    pacer.began()
    pacer.record(0.0, 0.090)  # a dearer redraw (a busier machine): the mean of the last three
    pacer.record(0.0, 0.090)
    assert pacer.cost == pytest.approx((0.030 + 0.090 + 0.090) / 3)
    assert pacer.interval() == pytest.approx(pacer.cost / 0.03)
    pacer.record(0.001, 0.001)
    pacer.record(0.001, 0.001)
    pacer.record(0.001, 0.001)  # cheap again: the floor, once the dear ones leave the window
    assert pacer.interval() == 0.5
    clock.now += 0.1
    assert pacer.wait() == pytest.approx(0.4)
    pacer.reset()  # a new run: its first step is drawn at once
    assert pacer.wait() == 0.0


def test_the_drawings_share_of_the_time_stays_within_the_budget():
    # A simulated 60-s run on a fake clock whose redraws cost 20-80 ms of helper CPU: the
    # pacer lets through redraws whose cost adds up to at most the share (plus one redraw).
    from nbtrain.views.dashboard import RedrawPacer

    clock = FakeClock()
    pacer = RedrawPacer(0.5, share=0.03, clock=clock)
    start, spent, redraws = clock.now, 0.0, 0
    costs = [0.02, 0.08, 0.05, 0.03, 0.06]
    while clock.now - start < 60.0:
        if pacer.wait() == 0.0:
            cost = costs[redraws % len(costs)]
            pacer.began()
            pacer.record(0.001, cost)
            spent += cost + 0.001
            redraws += 1
        clock.now += 0.01  # rows keep arriving
    assert redraws > 10
    assert spent <= 0.03 * 60.0 + max(costs) + 0.001


@pytest.mark.parametrize("kwargs, match", [
    ({"min_interval": -1}, "min_interval must be a number of seconds >= 0, got -1"),
    ({"min_interval": 0.5, "share": 0}, r"share must be a fraction in \(0, 1\], got 0"),
    ({"min_interval": 0.5, "window": 0}, "window must be an int >= 1, got 0"),
])
def test_the_pacer_checks_its_arguments(kwargs, match):
    from nbtrain.views.dashboard import RedrawPacer

    with pytest.raises(ValueError, match=match):
        RedrawPacer(**kwargs)


def test_the_dashboard_paces_by_the_helpers_measured_cost():
    d = _dash(callbacks=[Sleepy(0.02)])
    try:
        plotter = d.drawing.plotter
        assert plotter is not None and plotter.wait_ready(60)
        _set(d, epochs=2, lr=1e-3)
        before = len(plotter.cpu_seconds)
        d.train()
        _finish(d)
        helper = plotter.cpu_seconds[before:]
        assert helper and d.helper_seconds[-len(helper):] == helper  # each redraw's helper CPU, as measured
        # The pacer's costs are the run's redraws (the final one after the run is not paced):
        # kernel plus helper CPU of each.
        window = list(d.pacer.costs)
        spent = [k + h for k, h in zip(d.render_seconds, d.helper_seconds)][:-1]
        assert window and window == pytest.approx(spent[-len(window):])
    finally:
        d.close()
