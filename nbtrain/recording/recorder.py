"""``Recorder``: nbtrain's records for a training loop nbtrain did not write.

Put it into a hand-written PyTorch loop::

    with nbtrain.Recorder("runs/mine") as rec:
        for epoch in range(epochs):
            for x, y in loader:
                loss = loss_fn(model(x), y)
                optimizer.zero_grad()
                loss.backward()
                rec.clip_grad_norm_(model.parameters(), max_norm=1.0)  # instead of torch.nn.utils.clip_grad_norm_
                optimizer.step()
                rec.step(loss, optimizer)                               # before scheduler.step()
            rec.evaluate(validation_loss(model))
            scheduler.step()
            rec.epoch_end()                                            # after the scheduler's epoch step
    nbtrain.diagnose(nbtrain.load_run("runs/mine").history)

``clip_grad_norm_`` calls ``torch.nn.utils.clip_grad_norm_`` itself: the same return value
(the total pre-clip norm) and the same clipping, bit for bit. The recorder keeps the norm
tensor and the clip coefficient on the device; ``step`` brings them to the host with the loss
(and a GradScaler's scale) in one sync: one host sync per step. Definitions of the recorded
numbers: ``nbtrain.recording.gradients``; rows and units: ``nbtrain.recording.runlog``.

Step rows: ``step`` (0-based count of ``step()`` calls), ``epoch`` (0-based, when
``epoch_end`` is used), ``loss``, ``lr`` (the optimizer's first param group when ``step`` is
called), ``grad_norm``, ``clipped``, ``clip_factor`` (when ``clip_grad_norm_`` was called for
the step), ``loss_scale`` and ``skipped`` (with an enabled GradScaler: call ``step`` after
``scaler.update()``). With the GradScaler call ``scaler.unscale_(optimizer)`` before
``clip_grad_norm_`` (torch's AMP recipe) so the norms are of the unscaled gradients.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import torch

from ..training.history import History
from .gradients import ScaleTracker, check_max_norm, clip_coefficient, first_lr, host_values, scaler_scale, step_row
from .runlog import RunLog


class Recorder:
    """Records a hand-written loop into the run folder ``out`` (see the module's docstring).

    ``sink``: where the recorder's lines go (``print``; None for silence).
    """

    def __init__(self, out: Any, sink: Any = print) -> None:
        self.runlog = RunLog(out, "recorder", sink, epoch_in_steps=False)
        self.runlog.recorder = {"torch": torch.__version__}
        self._pending: dict | None = None  # the last clip_grad_norm_ call's tensors, until step()
        self._optimizer: Any = None
        self._scales = ScaleTracker()
        self._max_norms: list[float] = []
        self._closed = False

    @property
    def out(self):
        return self.runlog.out

    # -- the calls in the loop ----------------------------------------------------------
    def clip_grad_norm_(self, parameters: Iterable[torch.Tensor] | torch.Tensor, max_norm: float,
                        norm_type: float | str = 2.0, error_if_nonfinite: bool = False,
                        foreach: bool | None = None) -> torch.Tensor:
        """``torch.nn.utils.clip_grad_norm_`` (same arguments, result and clipping), recorded."""
        max_norm = check_max_norm(max_norm)
        norm = torch.nn.utils.clip_grad_norm_(parameters, max_norm, norm_type=norm_type,
                                              error_if_nonfinite=error_if_nonfinite, foreach=foreach)
        if self._pending is not None:
            self.runlog.note("clip_grad_norm_ was called more than once between step() calls: "
                             "each step row holds the last call's norm")
        self._pending = {"norm": norm.detach(), "coef": clip_coefficient(norm.detach(), max_norm)}
        self._note_max_norm(max_norm, norm_type)
        return norm

    def step(self, loss: Any = None, optimizer: Any = None, scaler: Any = None) -> None:
        """Record one optimizer step: its ``loss`` (tensor or number), the LR of ``optimizer``
        (default: the last one given), the last ``clip_grad_norm_``'s norm, and with ``scaler``
        (an enabled GradScaler, after its ``update()``) the loss scale and whether the step was skipped."""
        self._check_open("step")
        loss = _check_loss(loss)
        optimizer = self._use_optimizer(optimizer)
        lr = first_lr(optimizer) if optimizer is not None else None
        pending, self._pending = self._pending or {}, None
        self.runlog.add_step(step_row(len(self.runlog.steps), loss=loss, norm=pending.get("norm"),
                                      coef=pending.get("coef"), lr=lr, scale=scaler_scale(scaler), scales=self._scales,
                                      scaler=scaler, epoch=len(self.runlog.epoch_ends)))

    def evaluate(self, val_loss: Any) -> None:
        """Record an evaluation (``val_loss``, tensor or number) at the current step."""
        self._check_open("evaluate")
        value, lr = host_values([_check_number("val_loss", val_loss),
                                 first_lr(self._optimizer) if self._optimizer is not None else None])
        self.runlog.add_evaluation(value, lr=lr)

    def epoch_end(self, optimizer: Any = None) -> None:
        """Close the current epoch: its statistics, its evaluation (if any) and the LR in force
        now (call after the scheduler's epoch step). Writes the run folder."""
        self._check_open("epoch_end")
        optimizer = self._use_optimizer(optimizer)
        (lr,) = host_values([first_lr(optimizer) if optimizer is not None else None])
        self.runlog.end_epoch(lr=lr)
        history = self.runlog.write("running")
        if history.epochs and self.runlog.epoch_units():
            self.runlog.say(_epoch_line(history.epochs[-1]))

    # -- results ----------------------------------------------------------------------
    @property
    def history(self) -> History:
        """What was recorded so far, as a History."""
        return self.runlog.history()

    def save(self) -> History:
        """Write the run folder now (status "running"); returns the History."""
        return self.runlog.write("running")

    def close(self, status: str = "completed", message: str = "") -> History:
        """Write the run folder with its final status; returns the History. Later calls do nothing."""
        if self._closed:
            return self.runlog.history(status)
        self._closed = True
        if self._pending is not None:
            self.runlog.note("the last clip_grad_norm_ call had no step() after it and is not recorded")
        history = self.runlog.write(status, message)
        self.runlog.say(f"{self.runlog.summary()} ({status})")
        return history

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            status = "interrupted" if issubclass(exc_type, KeyboardInterrupt) else "failed"
            self.close(status, f"{exc_type.__name__}: {exc}")

    def __repr__(self) -> str:
        return f"Recorder({str(self.out)!r}, {len(self.runlog.steps)} steps)"

    # -- helpers ----------------------------------------------------------------------
    def _check_open(self, call: str) -> None:
        if self._closed:
            raise RuntimeError(f"Recorder.{call}() after close(): the run folder {self.out} is already written")

    def _use_optimizer(self, optimizer: Any) -> Any:
        if optimizer is None:
            return self._optimizer
        if not isinstance(getattr(optimizer, "param_groups", None), list) or not optimizer.param_groups:
            raise TypeError(f"optimizer must be a torch optimizer (with param_groups), got "
                            f"{type(optimizer).__name__}: {optimizer!r}")
        if self._optimizer is None:
            self.runlog.config.setdefault("lr", float(optimizer.param_groups[0].get("initial_lr", first_lr(optimizer))))
        self._optimizer = optimizer
        return optimizer

    def _note_max_norm(self, max_norm: float, norm_type: Any) -> None:
        if not self._max_norms:
            self.runlog.recorder.update(max_norm=max_norm, norm_type=norm_type)
            self.runlog.config["grad_clip"] = None if math.isinf(max_norm) else max_norm
        if max_norm not in self._max_norms:
            self._max_norms.append(max_norm)
        if len(self._max_norms) > 1:
            self.runlog.config.pop("grad_clip", None)
            self.runlog.recorder["max_norm"] = list(self._max_norms)
            self.runlog.note(f"clip_grad_norm_ was called with different max_norm values {self._max_norms}: "
                             "no single clip threshold is stated")


def _check_loss(loss: Any) -> Any:
    if loss is None:
        return None
    return _check_number("loss", loss)


def _check_number(name: str, value: Any) -> Any:
    """A scalar tensor (kept on its device) or a float; TypeError/ValueError naming ``name`` otherwise."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"{name} must be a scalar (one element), got a tensor of shape {tuple(value.shape)}")
        return value.detach()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number or a scalar tensor, got {type(value).__name__}: {value!r}")
    return float(value)


def _epoch_line(row: dict) -> str:
    parts = [f"epoch {row['epoch']}"]
    for key, label in (("train_loss", "train"), ("val_loss", "val"), ("lr", "lr"), ("grad_norm_p50", "grad norm p50"),
                       ("grad_norm_max", "max"), ("clip_fraction", "clipped")):
        if key in row:
            value = row[key]
            parts.append(f"{label} {value:.0%}" if key == "clip_fraction" else f"{label} {value:.4g}")
    return "  ".join(parts)


__all__ = ["Recorder"]
