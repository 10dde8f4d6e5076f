"""Where a sweep's trials run: a local process pool or Ray.

A backend is a function ``run(trials, model_fn, data_fn, workers, on_done)`` that runs
``run_trial`` for every trial and calls ``on_done(index, row)`` as each one finishes (in
any order); ``workers`` is the sweep's ``max_workers`` (None: the backend's default). A
worker that dies gives the trial a ``"failed"`` row (``worker_failed_row``) and the other
trials go on. To add a backend, write such a function here (``run_local`` is the model)
and register it under its name in ``RUNNERS``.

- ``"local"`` (nothing to install): ``concurrent.futures.ProcessPoolExecutor`` with the
  ``spawn`` start method (forking a process that has run torch is unsafe). On a machine
  with GPUs, trials on ``"auto"``/``"cuda"`` run in workers pinned to one GPU each
  (``nbtrain.sweeps.placement``: one per GPU by default, each taking the next trial as it
  frees); the other trials, and every trial on a machine without a GPU, in one pool.
- ``"ray"``: one Ray task per trial (``num_cpus=1``, plus ``num_gpus=1`` for a trial on
  CUDA) on whatever cluster ``ray.init`` connects to (``pip install nbtrain[ray]``).
"""

from __future__ import annotations

from typing import Callable

from .placement import LocalPlan, local_plan, ray_options
from .plan import Trial
from .trial import run_trial, worker_failed_row

OnDone = Callable[[int, dict], None]


def run_local(trials: list[Trial], model_fn, data_fn, workers: int | None, on_done: OnDone) -> None:
    """Run the trials in spawned processes (one thread each); with GPUs, spread them (see the module)."""
    plan = local_plan(trials, workers)
    if plan.gpu_slots:
        _run_slots(trials, plan, model_fn, data_fn, on_done, pin_gpu)
        return
    from concurrent.futures import as_completed

    pool = _spawn_pool(plan.cpu_workers)
    finished = False
    try:
        futures = {pool.submit(run_trial, t, model_fn, data_fn, True): i for i, t in enumerate(trials)}
        for fut in as_completed(futures):
            i = futures[fut]
            try:
                row = fut.result()
            except Exception as exc:  # the worker process died (killed, out of memory, ...)
                row = worker_failed_row(trials[i], exc)
            on_done(i, row)
        finished = True
    finally:
        # On an interrupt, queued trials are cancelled and this returns at once; the trials
        # already running finish in the background and write their done.json as usual.
        pool.shutdown(wait=finished, cancel_futures=True)


def pin_gpu(index: int) -> None:
    """A GPU slot's worker initializer: GPU ``index`` becomes the process's current CUDA device."""
    import torch

    torch.cuda.set_device(index)


def _spawn_pool(workers: int, pin=None, gpu: int | None = None):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    ctx = multiprocessing.get_context("spawn")
    if pin is None:
        return ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
    return ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=pin, initargs=(gpu,))


def _run_slots(trials: list[Trial], plan: LocalPlan, model_fn, data_fn, on_done: OnDone, pin) -> None:
    """Run ``plan``: each spread trial in the next free GPU slot (a one-process pool, ``pin``-ned), the rest in a pool."""
    from concurrent.futures import FIRST_COMPLETED, wait

    slots: list = [None] * len(plan.gpu_slots)  # slot -> its pool, made when first needed (again after a crash)
    other = _spawn_pool(plan.cpu_workers) if plan.cpu_trials else None
    running = {other.submit(run_trial, trials[i], model_fn, data_fn, True): (i, None) for i in plan.cpu_trials}
    queue, free, finished = list(plan.gpu_trials), list(range(len(slots))), False
    try:
        while queue or running:
            while queue and free:
                s, i = free.pop(0), queue.pop(0)
                slots[s] = slots[s] or _spawn_pool(1, pin, plan.gpu_slots[s])
                running[slots[s].submit(run_trial, trials[i], model_fn, data_fn, True)] = (i, s)
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in sorted(done, key=lambda f: running[f][0]):
                i, s = running.pop(fut)
                try:
                    row = fut.result()
                except Exception as exc:  # the worker process died: this slot gets a fresh one
                    row = worker_failed_row(trials[i], exc)
                    if s is not None:
                        slots[s].shutdown(wait=False, cancel_futures=True)
                        slots[s] = None
                on_done(i, row)
                if s is not None:
                    free.append(s)
        finished = True
    finally:  # an interrupt: as in run_local, queued trials are dropped and running ones finish
        for pool in [other, *slots]:
            if pool is not None:
                pool.shutdown(wait=finished, cancel_futures=True)


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


def run_ray(trials: list[Trial], model_fn, data_fn, workers: int | None, on_done: OnDone) -> None:
    """Run the trials as Ray tasks (one CPU, and one GPU for a trial on CUDA), at most ``workers`` in flight."""
    ray = import_ray()
    if not ray.is_initialized():
        ray.init()
    options = ray_options(trials, ray.cluster_resources().get("GPU", 0))
    remote_trial = ray.remote(run_trial)
    model_ref = ray.put(model_fn)
    data_ref = ray.put(data_fn)
    limit = workers or len(trials)
    pending: dict = {}
    queue = list(enumerate(trials))
    try:
        while queue or pending:
            while queue and len(pending) < limit:
                i, t = queue.pop(0)
                pending[remote_trial.options(**options[i]).remote(t, model_ref, data_ref, True)] = i
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                i = pending.pop(ref)
                try:
                    row = ray.get(ref)
                except Exception as exc:  # the task's worker died, or the cluster lost it
                    row = worker_failed_row(trials[i], exc)
                on_done(i, row)
    except BaseException:
        for ref in pending:
            ray.cancel(ref)
        raise


RUNNERS = {"local": run_local, "ray": run_ray}  # backend name -> its run function
BACKENDS = tuple(RUNNERS)

__all__ = ["BACKENDS", "RUNNERS", "import_ray", "pin_gpu", "run_local", "run_ray"]
