"""The fast paths: Adam's fused kernel (the default) and a compiled forward+loss (``compile=True``).

Fused Adam (``TrainConfig.fused_adam``, on by default) does one pass over each parameter's
data, gradient and moments instead of about a dozen elementwise passes and a Python loop over
the parameters; on the reference model at batch 8 it is the largest single saving
(benchmarks/RESULTS.md). It rounds differently from PyTorch's default (single-tensor) Adam:
the validation losses of a 7-epoch reference run agree to about 1e-7 relative, not bit for bit, so
``fused_adam=False`` keeps the default kernel for runs that must match earlier ones. Where the
fused kernel is unavailable (a device without it, parameters that are not floating point) the
default Adam runs and the trainer says so once. A checkpoint's optimizer state carries its
kernel choice; ``align_kernel`` sets it back to the config's after a restore.

The forward+loss (and so its backward) is compiled with
``torch.compile(dynamic=False)``; on CUDA with ``mode="reduce-overhead"`` (CUDA graphs: the
step's kernels replayed as one graph, which removes the launch overhead that dominates small
models), each call marked as a new step for torch's CUDA-graph trees. Elsewhere the default
mode. Compilation happens on the first call, so that call is guarded: a failure (no C++
compiler, an unsupported platform) falls back to the eager function before any state has
changed. The optimizer is the same either way (compiling the optimizer step instead of using
the fused kernel was slower, benchmarks/RESULTS.md).
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from .config import TrainConfig


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when the message is empty)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def make_adam(params: Sequence[torch.nn.Parameter], config: TrainConfig) -> tuple[torch.optim.Adam, str]:
    """Adam with the config's LR and weight decay, and a note for the log (empty when none).

    With ``config.fused_adam`` it asks for the fused kernel; when that is unavailable the
    note says so and PyTorch's default Adam is returned.
    """
    note = ""
    if config.fused_adam:
        try:
            return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay, fused=True), note
        except (RuntimeError, ValueError) as exc:
            note = f"fused Adam unavailable ({first_line(exc)}); running PyTorch's default Adam"
    return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay), note


def align_kernel(optimizer: torch.optim.Optimizer) -> str:
    """Give every parameter group the kernel ``optimizer`` was built with; returns its ``kernel_name``.

    ``load_state_dict`` takes the groups' options, ``fused`` and ``foreach`` included, from the
    state it loads: a checkpoint written before ``TrainConfig.fused_adam`` existed would bring
    back the default kernel under a config that asks for the fused one. Fused Adam keeps its
    step counters as float32 on the parameters' device, so they move there.
    """
    fused = is_fused(optimizer)
    for group in optimizer.param_groups:
        group["fused"] = True if fused else None
        group["foreach"] = None
        for p in group["params"] if fused else ():
            state = optimizer.state.get(p)
            if state and torch.is_tensor(state.get("step")):
                state["step"] = state["step"].to(dtype=torch.float32, device=p.device)
    return kernel_name(optimizer)


def is_fused(optimizer: torch.optim.Optimizer) -> bool:
    return bool(optimizer.defaults.get("fused"))


def kernel_name(optimizer: torch.optim.Optimizer) -> str:
    """``"fused"`` or ``"default"`` (PyTorch's default Adam kernel): what the history's meta records."""
    return "fused" if is_fused(optimizer) else "default"


def compile_mode(device: torch.device) -> str | None:
    """``torch.compile``'s mode on ``device``: ``"reduce-overhead"`` (CUDA graphs) on CUDA, else the default."""
    return "reduce-overhead" if device.type == "cuda" else None


def guarded_compile(eager: Callable, on_success: Callable[[Callable], None],
                    on_failure: Callable[[Exception], None], mode: str | None = None) -> Callable:
    """``torch.compile(eager)``, checked on its first call.

    Returns the function to call. Its first call compiles and runs; on success
    ``on_success(compiled)`` is told (so the caller can call the compiled function directly
    from then on), on failure ``on_failure(exc)`` is told and the eager result returned.
    If ``torch.compile`` itself raises, ``on_failure`` is told at once and ``eager`` returned.
    ``mode``: torch.compile's mode (``compile_mode``); under CUDA graphs every call starts a step.
    """
    try:
        compiled = torch.compile(eager, dynamic=False, **({} if mode is None else {"mode": mode}))
    except Exception as exc:  # torch.compile itself unavailable
        on_failure(exc)
        return eager
    if mode == "reduce-overhead":
        compiled = _graph_steps(compiled)

    def first_call(*args):
        try:
            out = compiled(*args)
        except Exception as exc:
            on_failure(exc)
            return eager(*args)
        on_success(compiled)
        return out

    return first_call


def _graph_steps(compiled: Callable) -> Callable:
    """``compiled``, each call preceded by ``cudagraph_mark_step_begin`` (a new forward, a new step)."""

    def call(*args):
        torch.compiler.cudagraph_mark_step_begin()
        return compiled(*args)

    return call


def compiled_info(optimizer: torch.optim.Optimizer, note: str = "", mode: str | None = None) -> str:
    """The run's ``compile_info`` when compilation is set up (``note``: ``make_adam``'s, first)."""
    how = "torch.compile" + (", CUDA graphs" if mode == "reduce-overhead" else "")
    info = f"compiled: forward+loss ({how})" + (", fused Adam" if is_fused(optimizer) else "")
    return f"{note}; {info}" if note else info


def failed_info(optimizer: torch.optim.Optimizer, exc: Exception) -> str:
    """The run's ``compile_info`` after compilation failed."""
    fused = ", with fused Adam" if is_fused(optimizer) else ""
    return f"torch.compile failed ({first_line(exc)}); running eager{fused}"


__all__ = [
    "align_kernel", "compile_mode", "compiled_info", "failed_info", "first_line", "guarded_compile", "is_fused",
    "kernel_name", "make_adam",
]
