"""``NbtrainCallback``: a Hugging Face ``TrainerCallback`` that writes an nbtrain run folder.

    from nbtrain.integrations.transformers import NbtrainCallback
    trainer = transformers.Trainer(model, args, train_dataset=..., eval_dataset=...,
                                   callbacks=[NbtrainCallback("runs/mine")])
    trainer.train()
    nbtrain.diagnose(nbtrain.load_run("runs/mine").history)

It records EVERY optimizer step, whatever ``logging_steps`` is (``transformers``, imported
when ``NbtrainCallback`` is first used):

- ``grad_norm``: the total 2-norm of the gradients before the Trainer clips them. The
  Trainer (transformers 5.x) clips before it calls ``on_pre_optimizer_step``, so no
  callback hook sees unclipped gradients; the callback takes the norm from per-parameter
  post-accumulate-grad hooks (``gradhooks.GradNormHooks``) registered on the model's
  parameters at ``on_train_begin``, combined at ``on_pre_optimizer_step``. Under fp16 loss
  scaling (an accelerate GradScaler on the optimizer) the norm is divided by the scale the
  step was taken with, and ``loss_scale``/``skipped`` are recorded. Single-process runs;
- ``clipped``/``clip_factor``: torch's clip coefficient against ``args.max_grad_norm``
  (clipping off when it is 0 or None);
- ``lr``: the optimizer's first param group at ``on_pre_optimizer_step`` (the LR the step
  uses, the value the Trainer logs as ``learning_rate``);
- ``loss``: the step's loss as the Trainer counts it, from the losses the model's forward
  returns in training mode during the step's micro-batches (a forward hook;
  ``output["loss"]`` or ``output.loss``): their sum when the forward was given
  ``num_items_in_batch`` (the model then normalizes each micro-batch's loss by the whole
  step's token count), else their mean (the Trainer divides each by the accumulation
  steps). A model that returns no loss (a custom ``compute_loss``) gets the Trainer's
  logged ``loss`` on logging steps instead;
- ``step`` = ``state.global_step`` after the step (1-based, as the Trainer logs it) and the
  fractional ``epoch`` = ``state.epoch``;
- per evaluation during training (``on_evaluate``): ``metrics[eval_loss_key]`` at
  ``state.global_step``, the epoch and the LR in force. Evaluation points are steps.

The run folder (``history.json``, ``status.json``) is written atomically at each epoch end and
at the end of training (status "completed"), by the main process only. The Trainer has no
hook on exceptions: a run that crashed keeps the folder of its last epoch (status "running").
One host sync per optimizer step.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from ..recording.gradients import ScaleTracker, clip_coefficient, first_lr, host_values, scaler_scale, step_row
from ..recording.runlog import RunLog
from .gradhooks import GradNormHooks
from .lazy import module_getattr


class _Recording:
    """The callback's hooks; ``NbtrainCallback`` mixes them into ``transformers.TrainerCallback``.

    ``out``: the run folder; ``sink``: where its lines go (None: silent); ``eval_loss_key``:
    the metric of ``on_evaluate`` that is the validation loss.
    """

    def __init__(self, out: Any, sink: Any = print, eval_loss_key: str = "eval_loss") -> None:
        self.runlog = RunLog(out, "transformers-callback", sink)
        self.eval_loss_key = eval_loss_key
        self._grads: GradNormHooks | None = None
        self._forward_hook: Any = None
        self._losses: list[torch.Tensor] = []
        self._summed = True  # every micro-batch loss was normalized over the whole step (num_items_in_batch)
        self._pending: dict | None = None
        self._clip: float | None = None
        self._scales = ScaleTracker()
        self._training = False

    @property
    def out(self):
        return self.runlog.out

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        import transformers

        if model is None:
            raise ValueError("NbtrainCallback needs the Trainer's model at on_train_begin, got model=None")
        self._detach_hooks()
        self._grads = GradNormHooks(model.parameters())
        self._forward_hook = model.register_forward_hook(self._take_loss, with_kwargs=True)
        self._clip = float(args.max_grad_norm) if args.max_grad_norm else None
        self.runlog.config.update(grad_clip=self._clip, lr=float(args.learning_rate))
        self.runlog.recorder = {"transformers": transformers.__version__, "torch": torch.__version__,
                                "max_grad_norm": args.max_grad_norm, "logging_steps": args.logging_steps,
                                "gradient_accumulation_steps": args.gradient_accumulation_steps}
        self._training = True

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._losses, self._summed = [], True

    def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, optimizer: Any = None, **kwargs: Any) -> None:
        norm = self._grads.total() if self._grads is not None else None
        scaler = getattr(optimizer, "scaler", None)
        scale = scaler_scale(scaler)
        if norm is not None and scale is not None:
            norm = norm / scale  # the accelerate GradScaler unscales before clipping
        self._pending = {"norm": norm, "coef": None if norm is None else clip_coefficient(norm, self._clip),
                         "lr": first_lr(optimizer) if optimizer is not None else None, "scaler": scaler}

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        pending, self._pending = self._pending or {}, None
        losses, self._losses = self._losses, []
        loss = None
        if losses:
            loss = torch.stack(losses).sum() if self._summed else torch.stack(losses).mean()
        scaler = pending.get("scaler")
        self.runlog.add_step(step_row(int(state.global_step), loss=loss, norm=pending.get("norm"),
                                      coef=pending.get("coef"), lr=pending.get("lr"), scale=scaler_scale(scaler),
                                      scales=self._scales, scaler=scaler,
                                      **({} if state.epoch is None else {"epoch": state.epoch})))
        if self._grads is not None:
            self._grads.reset()

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
        last = self.runlog.steps[-1] if self.runlog.steps else None
        if logs and "loss" in logs and last is not None and last["step"] == state.global_step and "loss" not in last:
            last["loss"] = float(logs["loss"])
            self.runlog.note("the model returned no loss: loss is the Trainer's logged loss on logging steps "
                             "(its mean since the previous log)")

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict | None = None,
                    optimizer: Any = None, **kwargs: Any) -> None:
        if not self._training:
            return
        if not metrics or self.eval_loss_key not in metrics:
            got = ", ".join(sorted(metrics or {}))
            self.runlog.note(f"an evaluation had no {self.eval_loss_key!r} metric (got: {got})")
            return
        value, lr = host_values([metrics[self.eval_loss_key], first_lr(optimizer) if optimizer is not None else None])
        extra = {} if state.epoch is None else {"epoch": state.epoch}
        self.runlog.add_evaluation(value, lr=lr, **extra)

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero:
            self.runlog.write("running")

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._detach_hooks()
        self._training = False
        if state.is_world_process_zero:
            self.runlog.write("completed")
            self.runlog.say(self.runlog.summary())

    # -- helpers --------------------------------------------------------------------------
    def _take_loss(self, module: Any, inputs: Any, kwargs: dict, output: Any) -> None:
        if not module.training:
            return
        loss = output.get("loss") if isinstance(output, Mapping) else getattr(output, "loss", None)
        if isinstance(loss, torch.Tensor) and loss.numel() == 1:
            self._losses.append(loss.detach().reshape(()).float())
            self._summed = self._summed and kwargs.get("num_items_in_batch") is not None

    def _detach_hooks(self) -> None:
        if self._grads is not None:
            self._grads.remove()
            self._grads = None
        if self._forward_hook is not None:
            self._forward_hook.remove()
            self._forward_hook = None


__getattr__ = module_getattr(globals(), _Recording, "transformers:TrainerCallback", "transformers")  # NbtrainCallback, built on first use


__all__ = ["NbtrainCallback"]
