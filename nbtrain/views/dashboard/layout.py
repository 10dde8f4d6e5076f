"""The dashboard's widgets: controls, buttons, the plot, the status, diagnosis and log panels.

``DashboardLayout`` builds them and arranges them in one ``VBox`` (``widget``), maps the
controls to and from config values, and keeps the texts the panels show. It holds no
run and starts no thread: the controller (``Dashboard``) wires the buttons to its actions.
Every widget carries a CSS class (``nbtrain-control-<field>``, ``nbtrain-button-<name>``,
``nbtrain-<panel>``) so browser tests can find it.
"""

from __future__ import annotations

import html
import math

import ipywidgets as W

from ...training import devices, presets
from ...training.config import TrainConfig

# Fields the controls set; everything else comes from the last preset loaded.
CONTROLLED_FIELDS = (
    "lr",
    "grad_clip",
    "scheduler_patience",
    "scheduler",
    "batch_size",
    "grad_accum_steps",
    "epochs",
    "seed",
    "device",
    "precision",
)
LR_RANGE = (1e-6, 1e-3)  # the LR slider's ends
SCHEDULER_CHOICES = (
    ("ReduceLROnPlateau", "plateau"),
    ("cosine warm restarts", "cosine_warm_restarts"),
    ("none (constant LR)", "none"),
)
PRECISION_CHOICES = (
    ("32-bit", "32"),
    ("bf16 mixed", "bf16-mixed"),
    ("fp16 mixed (loss scaling)", "16-mixed"),
)
_STYLE = {"description_width": "initial"}
TEXT_FALLBACK = ("nbtrain.Dashboard: its controls, live plots and diagnosis show when this cell runs in Jupyter "
                 "(widgets need a running kernel).")


class DashboardLayout:
    """The widgets of a dashboard (attributes named after what they show) and its panel texts.

    ``controls`` maps config field names (and ``clip_on``) to their widgets; ``widget`` is
    the whole tree; ``status``, ``error`` and ``diagnosis_html`` are what the panels show.
    ``image_width`` is the plots' width in pixels: the picture is shown at most that wide,
    so its 9-pt texts are never enlarged into a blur (a narrower notebook shrinks it).
    """

    def __init__(self, image_width: int = 1000) -> None:
        self._status_text = ""
        self._image_width = image_width  # the plot's PNG width in pixels: shown no wider (never blurred)
        self._error_text = ""
        self._diagnosis_html = ""
        self._build_controls()
        self._build_buttons()
        self._build_panels()
        self._add_css_classes()
        self.widget = W.VBox(
            [
                W.HBox([self.round1_button, self.round2_button, self.fallback, self.fallback_button]),
                W.HBox([self.lr, self.clip_on, self.clip, self.patience]),
                W.HBox([self.scheduler, self.batch_size, self.grad_accum_steps, self.epochs, self.seed]),
                W.HBox([self.device, self.precision]),
                W.HBox([self.train_button, self.stop_button, self.clear_button, self.status_widget]),
                self.error_widget,
                self.plot,
                W.HBox([self.diagnosis_widget, self.log_widget]),
            ]
        )
        self.widget.add_class("nbtrain-dashboard")

    def _build_controls(self) -> None:
        narrow = W.Layout(width="190px")
        self.lr = W.FloatLogSlider(
            value=2e-5, base=10, min=math.log10(LR_RANGE[0]), max=math.log10(LR_RANGE[1]), step=0.01,
            readout_format=".2e", description="learning rate", style=_STYLE, continuous_update=False,
            layout=W.Layout(width="380px"),
        )
        self.clip_on = W.Checkbox(
            value=True, description="clip gradients at", indent=False, layout=W.Layout(width="130px")
        )
        self.clip = W.FloatText(value=2.0, step=0.5, layout=W.Layout(width="80px"))
        self.patience = W.IntSlider(
            value=5, min=0, max=10, description="plateau patience", style=_STYLE, continuous_update=False
        )
        self.scheduler = W.Dropdown(options=SCHEDULER_CHOICES, value="plateau", description="scheduler", style=_STYLE)
        self.batch_size = W.IntText(value=8, description="batch size", style=_STYLE, layout=narrow)
        self.grad_accum_steps = W.IntText(value=1, description="accumulation steps", style=_STYLE, layout=narrow)
        self.epochs = W.IntText(value=7, description="epochs", style=_STYLE, layout=W.Layout(width="130px"))
        self.seed = W.IntText(value=0, description="seed", style=_STYLE, layout=W.Layout(width="130px"))
        self.device = W.Dropdown(options=device_choices(), value="auto", description="device", style=_STYLE,
                                 layout=narrow)
        self.precision = W.Dropdown(options=PRECISION_CHOICES, value="32", description="precision", style=_STYLE,
                                    layout=W.Layout(width="280px"))
        self.controls: dict[str, W.Widget] = {
            "lr": self.lr,
            "clip_on": self.clip_on,
            "grad_clip": self.clip,
            "scheduler_patience": self.patience,
            "scheduler": self.scheduler,
            "batch_size": self.batch_size,
            "grad_accum_steps": self.grad_accum_steps,
            "epochs": self.epochs,
            "seed": self.seed,
            "device": self.device,
            "precision": self.precision,
        }
        self.clip_on.observe(lambda change: setattr(self.clip, "disabled", not change["new"]), names="value")

    def _build_buttons(self) -> None:
        self.round1_button = W.Button(description="Load ROUND1", tooltip="lr 2e-5, clip 2.0, patience 5")
        self.round2_button = W.Button(description="Load ROUND2", tooltip="lr 1e-5, clip 3.0, patience 3")
        self.fallback = W.Dropdown(options=list(presets.FALLBACKS), description="fallback", style=_STYLE)
        self.fallback_button = W.Button(description="Load fallback")
        self.train_button = W.Button(description="Train", button_style="success", icon="play")
        self.stop_button = W.Button(description="Stop", button_style="danger", icon="stop", disabled=True)
        self.clear_button = W.Button(description="Clear history", tooltip="forget earlier runs of this session")

    def _build_panels(self) -> None:
        self.status_widget = W.HTML()
        self.error_widget = W.HTML()
        self.plot = W.Image(format="png", layout=W.Layout(width="100%", max_width=f"{self._image_width}px"))
        self.diagnosis_widget = W.HTML(layout=W.Layout(width="60%", max_height="420px", overflow="auto"))
        self.log_widget = W.Textarea(
            value="", disabled=True, placeholder="log lines of the runs appear here",
            layout=W.Layout(width="40%", height="300px"),
        )

    def _add_css_classes(self) -> None:
        for name, widget in (("status", self.status_widget), ("error", self.error_widget), ("plot", self.plot),
                             ("diagnosis", self.diagnosis_widget), ("log", self.log_widget)):
            widget.add_class(f"nbtrain-{name}")
        for name, widget in self.controls.items():
            widget.add_class(f"nbtrain-control-{name}")
        for widget in (self.round1_button, self.round2_button, self.fallback_button, self.train_button,
                       self.stop_button, self.clear_button):
            widget.add_class("nbtrain-button-" + widget.description.lower().replace(" ", "-"))

    def _repr_mimebundle_(self, **kwargs):
        """The widget tree, and for where widgets cannot show (a notebook opened without running
        it, a viewer) a line that says what it is instead of the widgets' long repr."""
        bundle = self.widget._repr_mimebundle_(**kwargs)
        if bundle:
            bundle["text/plain"] = TEXT_FALLBACK
        return bundle

    # -- controls <-> config values ------------------------------------------------------
    def show_config(self, config: TrainConfig) -> None:
        """Set every control from ``config``; refuses an LR outside the slider's range."""
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        lo, hi = LR_RANGE
        if not lo <= config.lr <= hi:
            raise ValueError(f"lr must be within the slider's range {lo:g} to {hi:g}, got {config.lr!r}")
        self.lr.value = config.lr
        self.clip_on.value = config.grad_clip is not None
        if config.grad_clip is not None:
            self.clip.value = config.grad_clip
        self.patience.max = max(self.patience.max, config.scheduler_patience)
        self.patience.value = config.scheduler_patience
        self.scheduler.value = config.scheduler
        self.batch_size.value = config.batch_size
        self.grad_accum_steps.value = config.grad_accum_steps
        self.epochs.value = config.epochs
        self.seed.value = config.seed
        if config.device not in self.device.options:  # e.g. "cuda" or a GPU this machine lacks: Train says so
            self.device.options = [*self.device.options, config.device]
        self.device.value = config.device
        self.precision.value = config.precision

    def control_values(self) -> dict:
        """The values of ``CONTROLLED_FIELDS`` the controls show (LR as its 3-digit readout)."""
        return {
            "lr": float(f"{self.lr.value:.3g}"),  # the slider moves in log steps; keep what its readout shows
            "grad_clip": float(self.clip.value) if self.clip_on.value else None,
            "scheduler_patience": int(self.patience.value),
            "scheduler": self.scheduler.value,
            "batch_size": int(self.batch_size.value),
            "grad_accum_steps": int(self.grad_accum_steps.value),
            "epochs": int(self.epochs.value),
            "seed": int(self.seed.value),
            "device": self.device.value,
            "precision": self.precision.value,
        }

    # -- panel texts ------------------------------------------------------------------------
    @property
    def status(self) -> str:
        return self._status_text

    @property
    def error(self) -> str:
        return self._error_text

    @property
    def diagnosis_html(self) -> str:
        return self._diagnosis_html

    def _set_status(self, text: str) -> None:
        self._status_text = text
        self.status_widget.value = f"<span>{html.escape(text)}</span>"

    def _set_error(self, text: str) -> None:
        self._error_text = text
        self.error_widget.value = (
            f"<div style='color:#b00020;font-weight:bold'>{html.escape(text)}</div>" if text else ""
        )

    def _set_diagnosis(self, text_html: str, placeholder: str = "") -> None:
        """Show ``text_html`` (kept as ``diagnosis_html``), or ``placeholder`` while there is none."""
        self._diagnosis_html = text_html
        self.diagnosis_widget.value = text_html or placeholder


def device_choices() -> list[str]:
    """The device control's options: ``"auto"`` and what this machine has (``devices.available()``)."""
    return ["auto", *devices.available()]


__all__ = ["CONTROLLED_FIELDS", "LR_RANGE", "PRECISION_CHOICES", "SCHEDULER_CHOICES", "TEXT_FALLBACK",
           "DashboardLayout", "device_choices"]
