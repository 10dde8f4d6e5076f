"""Where a sweep's trials run: which ones use CUDA, the local backend's workers, what Ray is asked for.

Definitions
-----------
trial device
    The ``device`` of the trial's config: the grid's value when the grid has a ``device``
    axis, else the base config's (``trial_device``).
spread trial
    A trial that the local backend spreads over this machine's GPUs: its device is
    ``"auto"`` or ``"cuda"`` and ``devices.cuda_count() > 0`` (``spreads``). Trials on
    ``"cpu"``, ``"mps"`` or an explicit ``"cuda:N"`` (a GPU chosen by the user) are not
    spread: they run in ordinary workers, as on a machine without a GPU.
GPU slot
    A local worker process pinned to one GPU: before it trains, it makes that GPU its
    current CUDA device (``torch.cuda.set_device``), so ``"auto"`` and ``"cuda"`` resolve to
    it. Slot ``s`` has GPU ``s % n`` of the ``n`` GPUs; there are ``max_workers`` slots
    (default: one per GPU), never more than there are spread trials. The trial's config is
    left as it is, so its ``done.json``, its checkpoint and its resume do not depend on which
    GPU ran it; the run folder records the device the trainer used.
Ray resources
    One CPU per trial (``num_cpus=1``), and one GPU (``num_gpus=1``) for a trial on
    ``"cuda"``, or on ``"auto"`` when the cluster has GPUs. Ray shows a task its GPU as
    ``cuda:0``, so an explicit ``"cuda:N"`` with ``N > 0`` cannot run there (``ValueError``).

Nothing here starts a process or initializes CUDA.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Sequence

from ..training import devices
from .plan import Trial

SPREAD_DEVICES = ("auto", "cuda")  # config devices the local backend spreads over the GPUs


def trial_device(trial: Trial) -> str:
    """The ``device`` a trial's config asks for (see the module's definitions)."""
    return trial.params.get("device", trial.base.get("device", "auto"))


def spreads(device, n_gpus: int) -> bool:
    """True when a trial on ``device`` is spread over ``n_gpus`` GPUs by the local backend."""
    return n_gpus > 0 and device in SPREAD_DEVICES


@dataclass
class LocalPlan:
    """How the local backend runs a list of trials (indices into it).

    ``gpu_slots[s]`` is the GPU of slot ``s``; the spread trials (``gpu_trials``) go to the
    slots, each to the next free one; the others (``cpu_trials``) to a pool of
    ``cpu_workers`` unpinned processes.
    """

    gpu_trials: list[int] = field(default_factory=list)
    cpu_trials: list[int] = field(default_factory=list)
    gpu_slots: list[int] = field(default_factory=list)
    cpu_workers: int = 0

    def describe(self) -> str:
        """The workers in words, for the sweep's start line."""
        parts = []
        if self.gpu_slots:
            gpus = sorted(set(self.gpu_slots))
            per = len(self.gpu_slots) / len(gpus)
            each = "one worker per GPU" if per == 1 else f"{len(self.gpu_slots)} workers"
            parts.append(f"{each} on {', '.join(f'cuda:{g}' for g in gpus)}")
        if self.cpu_workers:
            parts.append(f"{self.cpu_workers} worker process{'es' if self.cpu_workers > 1 else ''}"
                         + (" for the other trials" if self.gpu_slots else ""))
        return ", ".join(parts)


def local_plan(trials: Sequence[Trial], max_workers: int | None, n_gpus: int | None = None) -> LocalPlan:
    """Which trials the local backend spreads over the GPUs, its GPU slots and its other workers.

    ``n_gpus``: default ``devices.cuda_count()``. ``max_workers`` bounds the GPU slots
    (default one per GPU) and all workers together (default ``os.cpu_count()``); the
    other trials keep at least one worker. Without a GPU this is today's pool:
    ``min(max_workers or os.cpu_count(), len(trials))`` workers.
    """
    n = devices.cuda_count() if n_gpus is None else n_gpus
    plan = LocalPlan()
    for i, t in enumerate(trials):
        (plan.gpu_trials if spreads(trial_device(t), n) else plan.cpu_trials).append(i)
    if plan.gpu_trials:
        plan.gpu_slots = [s % n for s in range(min(len(plan.gpu_trials), max_workers or n))]
    if plan.cpu_trials:
        room = (max_workers or os.cpu_count() or 1) - len(plan.gpu_slots)
        plan.cpu_workers = min(len(plan.cpu_trials), max(1, room))
    return plan


def ray_options(trials: Sequence[Trial], cluster_gpus: float) -> list[dict]:
    """The Ray resources of each trial (see the module's definitions); ``cluster_gpus``: the cluster's GPUs.

    Raises ``ValueError`` for a trial that asks for CUDA on a cluster without a GPU, or for
    a GPU other than ``cuda:0`` (Ray gives each task one GPU, which it sees as ``cuda:0``).
    """
    options = []
    for t in trials:
        device = trial_device(t)
        cuda = isinstance(device, str) and (device == "cuda" or device.startswith("cuda:"))
        if cuda and device not in ("cuda", "cuda:0"):
            raise ValueError(f"device {device!r} cannot run on the Ray backend: Ray gives each trial one GPU, "
                             "which the trial sees as cuda:0; use device 'cuda' (or 'auto')")
        if cuda and not cluster_gpus:
            raise ValueError(f"trials ask for device {device!r} but the Ray cluster has no GPU; "
                             "use device 'auto' or 'cpu', or connect to a cluster with GPUs")
        gpu = cuda or (device == "auto" and cluster_gpus > 0)
        options.append({"num_cpus": 1, "num_gpus": 1} if gpu else {"num_cpus": 1})
    return options


__all__ = ["SPREAD_DEVICES", "LocalPlan", "local_plan", "ray_options", "spreads", "trial_device"]
