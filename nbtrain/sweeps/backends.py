"""Where a sweep's trials run: a local process pool or Ray.

A backend is a function ``run(trials, model_fn, data_fn, workers, on_done)`` that runs
``run_trial`` for every trial and calls ``on_done(index, row)`` as each one finishes (in
any order). A worker that dies gives the trial a ``"failed"`` row (``worker_failed_row``)
and the other trials go on. To add a backend, write such a function here (``run_local`` is
the model) and register it under its name in ``RUNNERS``.

- ``"local"`` (nothing to install): a ``concurrent.futures.ProcessPoolExecutor`` with the
  ``spawn`` start method (forking a process that has run torch is unsafe).
- ``"ray"``: one Ray task per trial (``num_cpus=1``) on whatever cluster ``ray.init``
  connects to (``pip install nbtrain[ray]``).
"""

from __future__ import annotations

from typing import Callable

from .plan import Trial
from .trial import run_trial, worker_failed_row

OnDone = Callable[[int, dict], None]


def run_local(trials: list[Trial], model_fn, data_fn, workers: int | None, on_done: OnDone) -> None:
    """Run the trials in ``workers`` spawned processes (one thread each)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
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
    """Run the trials as Ray tasks of one CPU, at most ``workers`` in flight (None: all)."""
    ray = import_ray()
    if not ray.is_initialized():
        ray.init()
    remote_trial = ray.remote(num_cpus=1)(run_trial)
    model_ref = ray.put(model_fn)
    data_ref = ray.put(data_fn)
    limit = workers or len(trials)
    pending: dict = {}
    queue = list(enumerate(trials))
    try:
        while queue or pending:
            while queue and len(pending) < limit:
                i, t = queue.pop(0)
                pending[remote_trial.remote(t, model_ref, data_ref, True)] = i
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

__all__ = ["BACKENDS", "RUNNERS", "import_ray", "run_local", "run_ray"]
