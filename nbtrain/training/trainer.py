"""The instrumented training loop.

One optimizer step, in order: forward and backward over ``grad_accum_steps`` micro-batches
(each loss scaled by its share of the samples, so N micro-batches of b give the gradient
of one batch of N*b), ``clip_grad_norm_`` (which returns the total norm BEFORE clipping:
that is what is logged), a finiteness check, ``optimizer.step()``, and for cosine warm
restarts ``scheduler.step(epoch + i / steps_per_epoch)`` as torch documents. After each
epoch: validation, ``ReduceLROnPlateau.step(val_loss)``, a log line for every LR cut, and
an atomic checkpoint when the run has a folder.

Host syncs: one per optimizer step (loss and pre-clip norm leave the device together).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from .callbacks import Callback
from .config import TrainConfig
from .. import measures
from ..files import atomic_write_text
from .history import History
from .runfolder import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_FILE,
    CONFIG_FILE,
    HISTORY_FILE,
    STATUS_FILE,
    is_complete_run,
    load_checkpoint,
    save_checkpoint,
)

Sink = Callable[[str], None]



# -- results ---------------------------------------------------------------------------
@dataclass
class Run:
    """What ``train`` returns: the config, the history, the trained model and how it ended."""

    config: TrainConfig
    history: History
    model: nn.Module
    status: str  # "completed", "stopped" (stop flag) or "diverged" (non-finite loss/gradient)
    message: str = ""
    out_dir: Path | None = None
    compile_info: str = ""

    @property
    def checkpoint_path(self) -> Path | None:
        return None if self.out_dir is None else self.out_dir / CHECKPOINT_FILE

    def __repr__(self) -> str:
        where = f", out_dir={str(self.out_dir)!r}" if self.out_dir else ""
        return f"Run({self.config.label!r}, {self.status}, {self.history!r}{where})"


# -- data ------------------------------------------------------------------------------
class _Batches:
    """Per-epoch batches in a reproducible order.

    Tensor data is permuted once per epoch and cut into contiguous slices (views, no
    per-sample gathering). Other datasets go through a DataLoader with the same
    per-epoch permutation as sampler. A DataLoader given by the caller is used as is.
    """

    def __init__(self, data, batch_size: int, shuffle: bool, seed: int) -> None:
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.loader: DataLoader | None = None
        self.tensors: tuple[torch.Tensor, ...] | None = None
        self.dataset: Dataset | None = None
        if isinstance(data, DataLoader):
            self.loader = data
        elif isinstance(data, TensorDataset):
            self.tensors = tuple(data.tensors)
        elif isinstance(data, Dataset):
            self.dataset = data
        elif isinstance(data, (tuple, list)) and data and all(isinstance(t, torch.Tensor) for t in data):
            self.tensors = tuple(data)
        else:
            raise TypeError(
                f"data must be a torch Dataset, a DataLoader or a tuple of tensors, got {type(data).__name__}"
            )

    def __len__(self) -> int:
        if self.loader is not None:
            return len(self.loader)
        n = len(self.tensors[0]) if self.tensors is not None else len(self.dataset)
        return math.ceil(n / self.batch_size)

    @property
    def n_samples(self) -> int:
        if self.loader is not None:
            return len(self.loader.dataset)
        return len(self.tensors[0]) if self.tensors is not None else len(self.dataset)

    def _perm(self, epoch: int, n: int) -> torch.Tensor | None:
        if not self.shuffle:
            return None
        g = torch.Generator().manual_seed(self.seed * 100003 + epoch)
        return torch.randperm(n, generator=g)

    def epoch(self, epoch: int) -> Iterator[tuple]:
        if self.loader is not None:
            yield from self.loader
            return
        if self.tensors is not None:
            n = len(self.tensors[0])
            perm = self._perm(epoch, n)
            tensors = self.tensors if perm is None else tuple(t[perm] for t in self.tensors)
            for i in range(0, n, self.batch_size):
                yield tuple(t[i : i + self.batch_size] for t in tensors)
            return
        perm = self._perm(epoch, len(self.dataset))
        sampler = None if perm is None else perm.tolist()
        yield from DataLoader(self.dataset, batch_size=self.batch_size, sampler=sampler)


def _split_batch(batch) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(batch, dict):
        return batch["x"], batch["y"]
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return batch[0], batch[1]
    raise TypeError(f"each batch must be (inputs, targets), got {type(batch).__name__}")


def _grouped(batches: Iterable, n: int) -> Iterator[list]:
    group: list = []
    for b in batches:
        group.append(b)
        if len(group) == n:
            yield group
            group = []
    if group:
        yield group


# -- the loop --------------------------------------------------------------------------
class Trainer:
    """Owns one run: model, optimizer, scheduler, data and the History.

    Most users call ``nbtrain.train``; the Trainer is what callbacks see.
    """

    def __init__(
        self,
        config: TrainConfig,
        model: nn.Module | None = None,
        train_data=None,
        val_data=None,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        *,
        out: str | os.PathLike | None = None,
        callbacks: Sequence[Callback] = (),
        sink: Sink | None = print,
        progress: bool = False,
    ) -> None:
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
        self.config = config
        self.sink = sink if sink is not None else (lambda _msg: None)
        self.callbacks = list(callbacks)
        self.progress = progress
        self.out_dir = None if out is None else Path(out)
        self.history = History(meta={"config": config.to_dict()})
        self._stop_requested = False
        self.reference_data = None

        torch.manual_seed(config.seed)
        if model is None and train_data is None:
            from ..reference.data import make_reference_data
            from ..reference.models import ReferenceModel

            self.reference_data = make_reference_data(config.resolved_data_seed, normalize=config.normalize)
            train_data, val_data = self.reference_data.train, self.reference_data.val
            model = ReferenceModel()
            self.history.meta["experiment"] = "reference"
            self.history.meta["data"] = self.reference_data.task.fingerprint()
        self.model = model
        self.loss_fn = loss_fn if loss_fn is not None else nn.MSELoss()
        self.train_batches = _Batches(train_data, config.batch_size, shuffle=True, seed=config.seed)
        self.val_batches = _Batches(val_data, max(config.batch_size, 1024), shuffle=False, seed=config.seed)
        if len(self.train_batches) == 0:
            raise ValueError("train_data is empty")
        if len(self.val_batches) == 0:
            raise ValueError("val_data is empty")
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        if not self.params:
            raise ValueError("model has no trainable parameters")
        self.optimizer = self._make_optimizer()
        self.scheduler = self._make_scheduler()
        self.steps_per_epoch = math.ceil(len(self.train_batches) / config.grad_accum_steps)
        self.epoch = 0  # next epoch to run
        self.global_step = 0
        self.status = "completed"
        self.message = ""
        self._forward_loss = self._eager_forward_loss
        self.compile_info = ""
        if config.compile:
            self._setup_compile()

    # -- set-up ----------------------------------------------------------------------
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
        return self.loss_fn(self.model(x), y)

    def _make_optimizer(self) -> torch.optim.Optimizer:
        c = self.config
        self._fused_note = ""
        if c.compile:
            # The fast path's optimizer: Adam's fused kernel (one pass over each parameter's
            # data, grad and moments, instead of about a dozen elementwise passes). Measured on
            # the reference model at batch 8 it is the largest single saving; compiling the
            # step with torch.compile instead was slower (benchmarks/RESULTS.md).
            try:
                return torch.optim.Adam(self.params, lr=c.lr, weight_decay=c.weight_decay, fused=True)
            except (RuntimeError, ValueError) as exc:
                self._fused_note = f"fused Adam unavailable ({str(exc).strip().splitlines()[0]}); "
        return torch.optim.Adam(self.params, lr=c.lr, weight_decay=c.weight_decay)

    def _setup_compile(self) -> None:
        """The fast path: compile the forward+loss (and so its backward), with fused Adam.

        Compilation happens on the first call, so it is guarded there: a failure (no C++
        compiler, an unsupported platform) switches back to the eager forward with one
        message through the sink, before any state has changed. The optimizer stays fused.
        """
        fused = bool(self.optimizer.defaults.get("fused"))
        prefix = self._fused_note
        try:
            fwd = torch.compile(self._eager_forward_loss, dynamic=False)
        except Exception as exc:  # torch.compile itself unavailable
            self._compile_failed(exc)
            return
        self._forward_loss = self._first_call_guard("_forward_loss", fwd, self._eager_forward_loss)
        self.compile_info = prefix + "compiled: forward+loss (torch.compile)" + (", fused Adam" if fused else "")

    def _first_call_guard(self, attr: str, compiled: Callable, eager: Callable) -> Callable:
        def first_call(*args):
            try:
                out = compiled(*args)
            except Exception as exc:
                self._compile_failed(exc)
                return eager(*args)
            setattr(self, attr, compiled)  # later calls go straight to the compiled function
            return out

        return first_call

    def _compile_failed(self, exc: Exception) -> None:
        self._forward_loss = self._eager_forward_loss
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        fused = ", with fused Adam" if self.optimizer.defaults.get("fused") else ""
        self.compile_info = f"torch.compile failed ({first_line}); running eager{fused}"
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
        return {
            "format": CHECKPOINT_FORMAT,
            "config": self.config.to_dict(),
            "epoch": self.epoch,
            "global_step": self.global_step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "rng_torch": torch.get_rng_state(),
            "history": self.history.to_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        saved = TrainConfig.from_dict(state["config"])
        ignore = {"epochs", "name"}
        diffs = {
            k: (v, getattr(self.config, k))
            for k, v in saved.to_dict().items()
            if k not in ignore and getattr(self.config, k) != v
        }
        if diffs:
            listed = ", ".join(f"{k}: checkpoint {a!r} vs config {b!r}" for k, (a, b) in diffs.items())
            raise ValueError(f"cannot resume: the config differs from the checkpoint's ({listed})")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng_torch"])
        self.epoch = int(state["epoch"])
        self.global_step = int(state["global_step"])
        self.history = History.from_dict(state["history"])
        self.history.meta["config"] = self.config.to_dict()

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
        c = self.config
        target = c.epochs if epochs is None else epochs
        if isinstance(target, bool) or not isinstance(target, int) or target < 1:
            raise ValueError(f"epochs must be a positive int, got {target!r}")
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
        self.history.meta["status"] = self.status
        if self.message:
            self.history.meta["message"] = self.message
        if self.out_dir is not None:
            self.history.save(self.out_dir / HISTORY_FILE)
            status = {"status": self.status, "message": self.message, "epochs": self.epoch}
            if "data" in self.history.meta:
                status["data"] = self.history.meta["data"]
            atomic_write_text(self.out_dir / STATUS_FILE, json.dumps(status, indent=2) + "\n")
        self._cb("on_train_end")
        return Run(
            config=c,
            history=self.history,
            model=self.model,
            status=self.status,
            message=self.message,
            out_dir=self.out_dir,
            compile_info=self.compile_info,
        )

    def _run_epoch(self, epoch: int) -> None:
        c = self.config
        t0 = time.perf_counter()
        self.model.train()
        lr_start = self.lr
        first_step_row = len(self.history.steps)
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=self.steps_per_epoch, desc=f"epoch {epoch}", leave=False)
        for i, group in enumerate(_grouped(self.train_batches.epoch(epoch), c.grad_accum_steps)):
            row = self._optimizer_step_on(group, epoch, i)
            if bar is not None:
                bar.update(1)
            if row is None:  # non-finite: stop, keep the last good checkpoint
                break
            if self._stop_requested:
                break
        if bar is not None:
            bar.close()
        if self.status != "completed" or self._stop_requested:
            return
        val_loss = self.evaluate()
        old_lr = self.lr
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(val_loss)
        new_lr = self.lr
        steps = self.history.steps[first_step_row:]
        row = _epoch_row(epoch, steps, val_loss, lr_start, new_lr, time.perf_counter() - t0)
        if not math.isfinite(val_loss):
            self._diverge(f"validation loss is {val_loss} after epoch {epoch}")
            return
        self.history.add_epoch(row)
        if new_lr < old_lr:
            self.sink(f"Learning rate reduced: {old_lr:.4g} -> {new_lr:.4g} (validation loss: {val_loss:.4f})")
            self._cb("on_lr_reduced", old_lr, new_lr, val_loss)
        self.sink(_epoch_line(row, c.epochs))
        self.epoch = epoch + 1
        self.save()
        self._cb("on_epoch_end", row)

    def _optimizer_step_on(self, group: list, epoch: int, i: int) -> dict | None:
        c = self.config
        self.optimizer.zero_grad(set_to_none=True)
        pairs = [_split_batch(b) for b in group]
        total = sum(len(x) for x, _ in pairs)
        loss_sum = None
        for x, y in pairs:
            loss = self._forward_loss(x, y)
            weighted = loss * (len(x) / total) if len(pairs) > 1 else loss
            weighted.backward()
            loss_sum = weighted.detach() if loss_sum is None else loss_sum + weighted.detach()
        # clip_grad_norm_ is get_total_norm + clip_grads_with_norm_; the latter multiplies every
        # gradient by min(1, clip / (norm + 1e-6)) without looking, to avoid a host sync. This
        # loop syncs once per step anyway (for the records), so it scales only when the factor
        # is below 1: the same result bit for bit, minus a read and a write of every gradient
        # on the steps that are not clipped.
        norm = torch.nn.utils.get_total_norm([p.grad for p in self.params if p.grad is not None], foreach=True)
        synced = [loss_sum.float(), norm.float()]
        if c.grad_clip is not None:
            synced.append((c.grad_clip / (norm + 1e-6)).float())  # torch's clip coefficient
        loss_v, norm_v, *coef = torch.stack(synced).tolist()  # the one host sync
        coef_v = coef[0] if coef else 1.0
        if not (math.isfinite(loss_v) and math.isfinite(norm_v)):
            what = "loss" if not math.isfinite(loss_v) else "gradient norm"
            value = loss_v if not math.isfinite(loss_v) else norm_v
            self.history.meta["non_finite_step"] = {
                "epoch": epoch, "step": self.global_step, "loss": loss_v, "grad_norm": norm_v, "lr": self.lr
            }
            self._diverge(f"non-finite {what} ({value}) at step {self.global_step} (epoch {epoch}, batch {i})")
            return None
        lr = self.lr
        clipped = coef_v < 1.0  # exactly when clip_grad_norm_ would scale the gradients
        if clipped:
            torch.nn.utils.clip_grads_with_norm_(self.params, c.grad_clip, norm, foreach=True)
        row = {
            "epoch": epoch,
            "step": self.global_step,
            "loss": loss_v,
            "grad_norm": norm_v,
            "clipped": clipped,
            "clip_factor": coef_v if clipped else 1.0,
            "lr": lr,
        }
        self.optimizer.step()
        if isinstance(self.scheduler, torch.optim.lr_scheduler.CosineAnnealingWarmRestarts):
            # torch documents stepping with fractional epochs; step k of an epoch then
            # runs at the LR of position epoch + k / steps_per_epoch in the cycle.
            self.scheduler.step(epoch + (i + 1) / self.steps_per_epoch)
        self.history.steps.append(row)
        self.global_step += 1
        self._cb("on_step_end", row)
        return row

    def _diverge(self, message: str) -> None:
        kept = "the last good checkpoint is kept" if self.out_dir is not None else "no checkpoint folder was given"
        self.status = "diverged"
        self.message = f"training stopped: {message}; {kept}; the history up to the last good step is kept"
        self.history.meta["status"] = self.status
        self.history.meta["message"] = self.message
        if self.out_dir is not None:
            self.history.save(self.out_dir / HISTORY_FILE)
        self.sink(self.message)

    @torch.no_grad()
    def evaluate(self) -> float:
        """Mean validation loss (weighted by batch size)."""
        was_training = self.model.training
        self.model.eval()
        total, n = None, 0
        for batch in self.val_batches.epoch(0):
            x, y = _split_batch(batch)
            loss = self.loss_fn(self.model(x), y).detach() * len(x)
            total = loss if total is None else total + loss
            n += len(x)
        if was_training:
            self.model.train()
        return float(total) / n


def _epoch_row(epoch: int, steps: list[dict], val_loss: float, lr_start: float, lr: float, seconds: float) -> dict:
    stats = measures.epoch_stats(steps)
    return {
        "epoch": epoch,
        "train_loss": stats["train_loss"],
        "val_loss": val_loss,
        "lr": lr,
        "lr_start": lr_start,
        "grad_norm_p50": stats["grad_norm_p50"],
        "grad_norm_p90": stats["grad_norm_p90"],
        "grad_norm_max": stats["grad_norm_max"],
        "clip_fraction": stats["clip_fraction"],
        "n_steps": stats["n_steps"],
        "epoch_time_s": seconds,
    }


def _epoch_line(row: dict, epochs: int) -> str:
    return (
        f"epoch {row['epoch']}/{epochs - 1}: train {row['train_loss']:.4f}  val {row['val_loss']:.4f}  "
        f"lr {row['lr']:.3g}  grad norm p50 {row['grad_norm_p50']:.2f} p90 {row['grad_norm_p90']:.2f} "
        f"max {row['grad_norm_max']:.2f}  clipped {row['clip_fraction']:.0%}  ({row['epoch_time_s']:.1f} s)"
    )


def train(
    config: TrainConfig,
    model: nn.Module | None = None,
    train_data=None,
    val_data=None,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
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
    ``reuse``: if ``out`` already holds a completed run of exactly this config (and, for
    the reference experiment, of the same reference task), load it (model from its
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
