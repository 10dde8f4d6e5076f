"""Where a sweep's trials run: a local process pool or Ray.

A backend is a function ``run(trials, model_fn, data_fn, workers, on_done)`` that runs
``run_trial`` for every trial and calls ``on_done(index, row)`` as each one finishes (in
any order); ``workers`` is the sweep's ``max_workers`` (None: the backend's default). A
worker that dies gives the trial a ``"failed"`` row whose ``error`` says what killed it
(``worker_failed_row``), and the other trials go on. To add a backend, write such a function
here (``run_local`` is the model) and register it under its name in ``RUNNERS``.

Underneath, each backend runs plain calls: ``CALLERS[name](calls, trials, workers,
on_result)`` runs every ``(function, args)`` of ``calls`` where the matching trial says
(its device: ``nbtrain.sweeps.placement``) and calls ``on_result(index, ok, value)`` with the
call's value, or with the text of what went wrong. ``nbtrain.train_many`` runs its trainings
through them too.

- ``"local"`` (nothing to install): worker processes started as ``python -m
  nbtrain.sweeps.worker`` (``nbtrain.sweeps.pool``), which never import the caller's
  ``__main__``: a sweep runs the same from a script with or without a main guard, ``python
  -c``, standard input, IPython and Jupyter. On a machine with GPUs, trials on
  ``"auto"``/``"cuda"`` run in workers pinned to one GPU each (``nbtrain.sweeps.placement``:
  one per GPU by default, each taking the next trial as it frees); the other trials, and
  every trial on a machine without a GPU, in the other workers.
- ``"ray"``: one Ray task per trial (``num_cpus=1``, plus ``num_gpus=1`` for a trial on
  CUDA) on whatever cluster ``ray.init`` connects to (``pip install nbtrain[ray]``).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from .placement import local_plan, ray_options
from .plan import Trial
from .pool import Lane, run_pool
from .trial import run_trial, worker_failed_row

OnDone = Callable[[int, dict], None]
OnResult = Callable[[int, bool, Any], None]


# -- plain calls -----------------------------------------------------------------------------
def call_local(calls: list, trials: Sequence[Trial], workers: int | None, on_result: OnResult) -> None:
    """Run ``calls[i]`` where ``trials[i]``'s device says, in local worker processes (see the module)."""
    plan = local_plan(trials, workers)
    lanes = []
    if plan.cpu_trials:
        lanes.append(Lane(plan.cpu_trials, [None] * plan.cpu_workers))
    if plan.gpu_trials:
        lanes.append(Lane(plan.gpu_trials, [(pin_gpu, (gpu,)) for gpu in plan.gpu_slots]))
    run_pool(calls, lanes, on_result)


def pin_gpu(index: int) -> None:
    """A GPU slot's worker initializer: GPU ``index`` becomes the process's current CUDA device."""
    import torch

    torch.cuda.set_device(index)


def import_ray():
    """The ``ray`` module, or an ImportError that names the extra to install."""
    try:
        import ray
    except ImportError as exc:
        raise ImportError(
            "backend='ray' needs Ray: pip install nbtrain[ray] (or pip install ray), "
            "or use backend='local'"
        ) from exc
    return ray


def _ray():
    ray = import_ray()
    if not ray.is_initialized():
        ray.init()
    return ray


def call_ray(calls: list, trials: Sequence[Trial], workers: int | None, on_result: OnResult) -> None:
    """Run the calls as Ray tasks (one CPU, and one GPU for a trial on CUDA), at most ``workers`` in flight."""
    ray = _ray()
    options = ray_options(trials, ray.cluster_resources().get("GPU", 0))
    remotes: dict = {}  # function -> its Ray remote function
    limit = workers or len(calls)
    pending: dict = {}
    queue = list(enumerate(calls))
    try:
        while queue or pending:
            while queue and len(pending) < limit:
                i, (fn, args) = queue.pop(0)
                if fn not in remotes:
                    remotes[fn] = ray.remote(fn)
                pending[remotes[fn].options(**options[i]).remote(*args)] = i
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                i = pending.pop(ref)
                try:
                    value, ok = ray.get(ref), True
                except Exception as exc:  # the task raised, its worker died, or the cluster lost it
                    value, ok = f"{type(exc).__name__}: {exc}", False
                on_result(i, ok, value)
    except BaseException:
        for ref in pending:
            ray.cancel(ref)
        raise


CALLERS = {"local": call_local, "ray": call_ray}  # backend name -> its plain-call runner


# -- sweep trials ----------------------------------------------------------------------------
def _rows(trials: Sequence[Trial], on_done: OnDone) -> OnResult:
    """``on_result`` for trial calls: a trial's row, or the failed row of a worker that died."""
    def on_result(i: int, ok: bool, value: Any) -> None:
        on_done(i, value if ok else worker_failed_row(trials[i], value))

    return on_result


def run_local(trials: list[Trial], model_fn, data_fn, workers: int | None, on_done: OnDone) -> None:
    """Run the trials in local worker processes (one thread each); with GPUs, spread them (see the module)."""
    calls = [(run_trial, (t, model_fn, data_fn, True)) for t in trials]
    call_local(calls, trials, workers, _rows(trials, on_done))


def run_ray(trials: list[Trial], model_fn, data_fn, workers: int | None, on_done: OnDone) -> None:
    """Run the trials as Ray tasks (one CPU, and one GPU for a trial on CUDA), at most ``workers`` in flight."""
    ray = _ray()
    model_ref, data_ref = ray.put(model_fn), ray.put(data_fn)  # shipped once, not with every task
    calls = [(run_trial, (t, model_ref, data_ref, True)) for t in trials]
    call_ray(calls, trials, workers, _rows(trials, on_done))


RUNNERS = {"local": run_local, "ray": run_ray}  # backend name -> its run function
BACKENDS = tuple(RUNNERS)

__all__ = ["BACKENDS", "CALLERS", "RUNNERS", "call_local", "call_ray", "import_ray", "pin_gpu", "run_local",
           "run_ray"]
