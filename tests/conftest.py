"""Shared fixtures: tiny synthetic tasks, a quiet log sink, optional modules, the Agg backend."""

from __future__ import annotations

import matplotlib
import pytest
import torch
from torch.utils.data import TensorDataset

import ci
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


@pytest.fixture
def require():
    """``require(module, reason)``: the optional module, else skip (fail under ``CI=true``); see ci.py."""
    return ci.require


@pytest.fixture(scope="module")
def sync_api():
    """Playwright's sync API for the browser tests (fails under CI=true when Chromium or playwright is missing)."""
    from browser_helpers import sync_api_or_fail

    return sync_api_or_fail()
