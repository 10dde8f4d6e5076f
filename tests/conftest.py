"""Shared fixtures: tiny synthetic tasks, a quiet log sink, optional modules, the Agg backend."""

from __future__ import annotations

import importlib
import os

import matplotlib
import pytest
import torch
from torch.utils.data import TensorDataset

from tasks import make_mlp, make_regression

matplotlib.use("Agg")
# The models here are small: one thread is as fast as two, and it cannot oversubscribe the
# cores when JupyterLab, Ray or notebook kernels run beside the tests.
torch.set_num_threads(1)


@pytest.fixture
def tiny_task():
    """(model, train_data, val_data) for a 4-feature linear-ish regression."""
    x, y = make_regression(128)
    xv, yv = make_regression(48, seed=1)
    return make_mlp(), TensorDataset(x, y), TensorDataset(xv, yv)


@pytest.fixture
def quiet():
    """A list that collects log lines: pass ``sink=quiet.append`` instead of printing."""
    return []


def cannot_run(reason: str) -> None:
    """End a test that cannot run here: skip with ``reason``, or fail under ``CI=true``.

    CI must not go green without the optional parts (TensorBoard, Ray, a browser).
    """
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: a test that cannot run fails instead of skipping)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def require():
    """``require(module, reason)``: import and return an optional module, else ``cannot_run(reason)``."""

    def _require(module: str, reason: str):
        try:
            return importlib.import_module(module)
        except ImportError as exc:
            cannot_run(f"{reason}: import {module} failed ({exc})")

    return _require
