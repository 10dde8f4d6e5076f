"""The instrumented training loop.

One optimizer step, in order: forward and backward over ``grad_accum_steps`` micro-batches
(each loss scaled by its share of the samples, so N micro-batches of b give the gradient
of one batch of N*b), the total gradient norm BEFORE clipping (that is what is logged), a
finiteness check, clipping as ``clip_grad_norm_`` does, ``optimizer.step()``, and for cosine warm
restarts ``scheduler.step(epoch + i / steps_per_epoch)`` as torch documents. After each
epoch: validation, ``ReduceLROnPlateau.step(val_loss)``, a log line for every LR cut, and
an atomic checkpoint when the run has a folder.

Device and precision (``config.device``, ``config.precision``): the model is moved once to the
resolved device (``devices``), the data lives there (``batches``), forward and loss run under
autocast, and under fp16's loss scaler the gradients are unscaled before the norm and steps
the scaler skips are recorded as such (``precision``).

Adam runs its fused kernel unless ``config.fused_adam`` is False (``fastpath``; the history's
meta records which under ``"adam"``). Host syncs: one per optimizer step (loss, pre-clip
norm, and the loss scale and skip flag under a scaler, leave the device together). Batching
lives in ``batches``, the step's gradient work in ``step``, the fast paths in ``fastpath``,
the rows and the ``Run`` in ``records``, the run-folder files in ``runfolder``.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn

from .. import measures
from . import checkpoint, fastpath, step, stopping
from .batches import Batches, grouped
from .callbacks import Callback
from .config import TrainConfig
from .devices import resolve_device
from .history import History
from .precision import Precision
from .records import Run, epoch_label, epoch_line, epoch_row
from .runfolder import (CHECKPOINT_FILE, CONFIG_FILE, HISTORY_FILE, is_complete_run, load_checkpoint,
                        save_checkpoint, write_status)
from .validation import validation_loss

Sink = Callable[[str], None]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _check_arguments(config, model, train_data, val_data, callbacks) -> None:
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    if (train_data is None) != (val_data is None):
        raise ValueError("give both train_data and val_data, or neither (for the reference experiment)")
    if model is not None and not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if model is None and train_data is not None:
        raise ValueError("train_data was given without a model: pass model= too")
    for cb in callbacks:
        if not isinstance(cb, Callback):
            raise TypeError(f"callbacks must be nbtrain.Callback instances, got {type(cb).__name__}")


class Trainer:
    """Owns one run: model, optimizer, scheduler, data and the History.

    Most users call ``nbtrain.train``; the Trainer is what callbacks see. ``device`` is the
    resolved ``torch.device`` the model and data live on; ``precision`` its ``Precision``.
    """

    def __init__(
        self,
        config: TrainConfig,
        model: nn.Module | None = None,
        train_data=None,
        val_data=None,
        loss_fn: LossFn | None = None,
        *,
        out: str | os.PathLike | None = None,
        callbacks: Sequence[Callback] = (),
        sink: Sink | None = print,
        progress: bool = False,
    ) -> None:
        _check_arguments(config, model, train_data, val_data, callbacks)
        self.config = config
        self.sink = sink if sink is not None else (lambda _msg: None)
        self.callbacks = list(callbacks)
        self.progress = progress
        self.out_dir = None if out is None else Path(out)
        self.device = resolve_device(config.device)
        self.precision = Precision(config.precision, self.device)
        self.history = History(meta={"config": config.to_dict(), "device": str(self.device),
                                     "precision": config.precision})
        self._stop_requested = False
        self.reference_data = None
        torch.manual_seed(config.seed)
        if model is None:
            model, train_data, val_data = self._setup_reference()
        self.model = model.to(self.device)
        self.loss_fn = loss_fn if loss_fn is not None else nn.MSELoss()
        self._setup_data(train_data, val_data)
        self._setup_optimization()
        self.epoch = 0  # next epoch to run
        self.global_step = 0
        self.status = "completed"
        self.message = ""

    # -- set-up ----------------------------------------------------------------------
    def _setup_reference(self) -> tuple[nn.Module, object, object]:
        """The reference experiment: its data for ``config.data_seed`` and a fresh model."""
        from ..reference.data import make_reference_data
        from ..reference.models import ReferenceModel

        c = self.config
        self.reference_data = make_reference_data(c.resolved_data_seed, normalize=c.normalize)
        self.history.meta["experiment"] = "reference"
        self.history.meta["data"] = self.reference_data.task.fingerprint()
        return ReferenceModel(), self.reference_data.train, self.reference_data.val

    def _setup_data(self, train_data, val_data) -> None:
        c = self.config
        self.train_batches = Batches(train_data, c.batch_size, shuffle=True, seed=c.seed, device=self.device)
        self.val_batches = Batches(val_data, max(c.batch_size, 1024), shuffle=False, seed=c.seed, device=self.device)
        if len(self.train_batches) == 0:
            raise ValueError("train_data is empty")
        if len(self.val_batches) == 0:
            raise ValueError("val_data is empty")
        self.steps_per_epoch = math.ceil(len(self.train_batches) / c.grad_accum_steps)

    def _setup_optimization(self) -> None:
        """Parameters, optimizer, scheduler and (``config.compile``) the fast path."""
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        if not self.params:
            raise ValueError("model has no trainable parameters")
        self.optimizer, fused_note = fastpath.make_adam(self.params, self.config)
        self.history.meta["adam"] = fastpath.kernel_name(self.optimizer)
        if fused_note:
            self.sink(f"note: {fused_note}")
        self.scheduler = self._make_scheduler()
        self._forward_loss = self._eager_forward_loss
        self.compile_info = ""
        if self.config.compile:
            mode = fastpath.compile_mode(self.device)
            self.compile_info = fastpath.compiled_info(self.optimizer, fused_note, mode)
            self._forward_loss = fastpath.guarded_compile(
                self._eager_forward_loss, self._use_compiled, self._compile_failed, mode
            )

    def _make_scheduler(self):
        c = self.config
        if measures.uses_plateau(c):
            return torch.optim.lr_scheduler.ReduceLROnPlateau(self.optimizer, **measures.plateau_kwargs(c))
        if c.scheduler == "cosine_warm_restarts":
            return torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
                self.optimizer, T_0=c.cosine_t0, T_mult=c.cosine_t_mult, eta_min=c.min_lr
            )
        return None

    def _eager_forward_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with self.precision.autocast():
            return self.loss_fn(self.model(x), y)

    def _use_compiled(self, compiled: Callable) -> None:
        self._forward_loss = compiled  # later calls go straight to the compiled function

    def _compile_failed(self, exc: Exception) -> None:
        self._forward_loss = self._eager_forward_loss
        self.compile_info = fastpath.failed_info(self.optimizer, exc)
        self.sink(f"note: {self.compile_info}")

    # -- control ---------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the loop to end cleanly after the current optimizer step."""
        self._stop_requested = True

    @property
    def stop_requested(self) -> bool:
        return self._stop_requested

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    # -- checkpoints -----------------------------------------------------------------
    def state_dict(self) -> dict:
        """The checkpoint (``checkpoint.trainer_state``)."""
        return checkpoint.trainer_state(self)

    def load_state_dict(self, state: dict) -> None:
        checkpoint.restore(self, state)
        self.history.meta["adam"] = fastpath.align_kernel(self.optimizer)

    def resume_from(self, path: str | os.PathLike) -> None:
        self.load_state_dict(load_checkpoint(path))

    def save(self) -> None:
        if self.out_dir is None:
            return
        save_checkpoint(self.out_dir / CHECKPOINT_FILE, self.state_dict())
        self.history.save(self.out_dir / HISTORY_FILE)
        self.config.to_json(self.out_dir / CONFIG_FILE)

    # -- running ---------------------------------------------------------------------
    def _cb(self, hook: str, *args) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(self, *args)

    def fit(self, epochs: int | None = None) -> Run:
        """Train until ``epochs`` epochs in total have run (default ``config.epochs``).

        Calling it again with a larger number continues the same run.
        """
        target = self.config.epochs if epochs is None else epochs
        if isinstance(target, bool) or not isinstance(target, int) or target < 1:
            raise ValueError(f"epochs must be a positive int, got {target!r}")
        self._target_epochs = target  # the total the log lines and progress bar name ("epoch 3 (of 0-6)")
        self._stop_requested = False
        self.model.train()
        if self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self.config.to_json(self.out_dir / CONFIG_FILE)
        self._cb("on_train_begin")
        while self.epoch < target and self.status == "completed" and not self._stop_requested:
            self._run_epoch(self.epoch)
        if self._stop_requested and self.status == "completed":
            self.status = "stopped"
            self.message = f"stopped on request after step {self.global_step - 1} (epoch {self.epoch})"
            self.sink(self.message)
        self.model.eval()
        self._finish()
        self._cb("on_train_end")
        return Run(self.config, self.history, self.model, self.status, self.message, self.out_dir, self.compile_info)

    def _finish(self) -> None:
        """Record how the run ended in the history and, with a run folder, in its files."""
        self.history.meta["status"] = self.status
        if self.message:
            self.history.meta["message"] = self.message
        if self.out_dir is not None:
            self.history.save(self.out_dir / HISTORY_FILE)
            write_status(self.out_dir, self.status, self.message, self.epoch, self.history.meta.get("data"),
                         device=str(self.device), precision=self.config.precision)

    def _train_epoch(self, epoch: int) -> None:
        """The optimizer steps of one epoch (ends early on divergence or a stop request)."""
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=self.steps_per_epoch, desc=epoch_label(epoch, self._target_epochs), leave=False)
        for i, group in enumerate(grouped(self.train_batches.epoch(epoch), self.config.grad_accum_steps)):
            row = self._optimizer_step_on(group, epoch, i)
            if bar is not None:
                bar.update(1)
            if row is None or self._stop_requested:  # None: non-finite, keep the last good checkpoint
                break
        if bar is not None:
            bar.close()

    def _run_epoch(self, epoch: int) -> None:
        t0 = time.perf_counter()
        self.model.train()
        lr_start = self.lr
        first_step_row = len(self.history.steps)
        self._train_epoch(epoch)
        if self.status != "completed" or self._stop_requested:
            return
        val_loss = self.evaluate()
        old_lr = self.lr
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(val_loss)
        new_lr = self.lr
        steps = self.history.steps[first_step_row:]
        row = epoch_row(epoch, steps, val_loss, lr_start, new_lr, time.perf_counter() - t0)
        if not math.isfinite(val_loss):
            self._diverge(f"validation loss is {val_loss} after epoch {epoch}")
            return
        self.history.add_epoch(row)
        if new_lr < old_lr:
            self.sink(f"Learning rate reduced: {old_lr:.4g} -> {new_lr:.4g} (validation loss: {val_loss:.4f})")
            self._cb("on_lr_reduced", old_lr, new_lr, val_loss)
        self.sink(epoch_line(row, self._target_epochs))
        self.epoch = epoch + 1
        self.save()
        self._cb("on_epoch_end", row)

    def _optimizer_step_on(self, group: list, epoch: int, i: int) -> dict | None:
        """One optimizer step; its row, or None when the run stopped (non-finite, or the scaler keeps skipping).

        A step the loss scaler skips (inf/NaN in the unscaled gradients, finite loss) is recorded
        with ``skipped=True``: no clipping, no optimizer step, and no stop unless it keeps happening.
        """
        self.optimizer.zero_grad(set_to_none=True)
        prec = self.precision
        loss_sum = step.accumulated_backward(self._forward_loss, group, prec.scale)
        prec.unscale(self.optimizer)
        loss_v, norm_v, coef_v, norm, flags = step.measure(
            self.params, loss_sum, self.config.grad_clip, prec.flags(self.optimizer)
        )
        scaler_fields = prec.row_fields(flags)
        skipped = scaler_fields.get("skipped", False)
        if not (math.isfinite(loss_v) and (skipped or math.isfinite(norm_v))):
            self._non_finite_step(epoch, i, loss_v, norm_v)
            return None
        lr = self.lr
        clipped = not skipped and step.clip_gradients(self.params, self.config.grad_clip, norm, coef_v)
        row = {
            "epoch": epoch,
            "step": self.global_step,
            "loss": loss_v,
            "grad_norm": norm_v,
            "clipped": clipped,
            "clip_factor": coef_v if clipped else 1.0,
            "lr": lr,
            **scaler_fields,
        }
        prec.step(self.optimizer, skipped)
        if isinstance(self.scheduler, torch.optim.lr_scheduler.CosineAnnealingWarmRestarts):
            # torch documents stepping with fractional epochs; step k of an epoch then
            # runs at the LR of position epoch + k / steps_per_epoch in the cycle.
            self.scheduler.step(epoch + (i + 1) / self.steps_per_epoch)
        self.history.steps.append(row)
        self.global_step += 1
        self._cb("on_step_end", row)
        if prec.keeps_skipping:
            self._keeps_skipping(row, i)
            return None
        return row

    def _non_finite_step(self, epoch: int, i: int, loss_v: float, norm_v: float) -> None:
        record, reason = stopping.non_finite(epoch, self.global_step, i, loss_v, norm_v, self.lr)
        self.history.meta["non_finite_step"] = record
        self._diverge(reason)

    def _keeps_skipping(self, row: dict, i: int) -> None:
        record, reason = stopping.keeps_skipping(row, i, self.precision.skips_in_a_row)
        self.history.meta["non_finite_step"] = record
        self._diverge(reason)

    def _diverge(self, reason: str) -> None:
        self.status = "diverged"
        self.message = stopping.stopped_message(reason, self.out_dir is not None)
        self.history.meta["status"] = self.status
        self.history.meta["message"] = self.message
        if self.out_dir is not None:
            self.history.save(self.out_dir / HISTORY_FILE)
        self.sink(self.message)

    def evaluate(self) -> float:
        """Mean validation loss (weighted by batch size; ``validation.validation_loss``)."""
        return validation_loss(self.model, self.loss_fn, self.val_batches, self.precision.autocast)


def train(
    config: TrainConfig,
    model: nn.Module | None = None,
    train_data=None,
    val_data=None,
    loss_fn: LossFn | None = None,
    *,
    out: str | os.PathLike | None = None,
    resume: str | os.PathLike | None = None,
    callbacks: Sequence[Callback] = (),
    sink: Sink | None = print,
    progress: bool = False,
    reuse: bool = False,
) -> Run:
    """Train ``config`` and return a :class:`Run`.

    With no model and data it trains the reference experiment (``nbtrain.data`` and
    ``nbtrain.models``). Otherwise ``model`` is any ``nn.Module`` and ``train_data`` /
    ``val_data`` are Datasets, DataLoaders or tuples of tensors yielding ``(x, y)``.

    ``out``: a run folder (config.json, history.json, checkpoint.pt after every epoch).
    ``resume``: a checkpoint file or run folder; training continues exactly where it
    stopped, up to ``config.epochs``. ``sink``: where log lines go (``None`` silences).
    ``reuse``: if ``out`` already holds a completed run of exactly this config, made by
    this version of nbtrain's code (``runfolder.code_fingerprint()``) and, for the
    reference experiment, on the same reference task, load it (model from its
    checkpoint) instead of training again; notebooks use it as a cache. For your own
    data the cache cannot tell whether the data changed: use a new ``out`` when it does.
    """
    trainer = Trainer(
        config, model, train_data, val_data, loss_fn, out=out, callbacks=callbacks, sink=sink, progress=progress
    )
    if reuse and out is not None and is_complete_run(Path(out), config, trainer.history.meta.get("data")):
        trainer.resume_from(out)
        return Run(config, trainer.history, trainer.model.eval(), "completed", "loaded from " + str(out), Path(out))
    if resume is not None:
        trainer.resume_from(resume)
    return trainer.fit()


__all__ = ["Run", "Trainer", "train"]
