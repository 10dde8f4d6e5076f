import json
import math

import pandas as pd
import pytest
import torch

from nbtrain import History, TrainConfig, train
from nbtrain.files import atomic_write_text
from nbtrain.training.history import EPOCH_COLUMNS, STEP_COLUMNS

from tasks import make_mlp, make_regression


@pytest.fixture
def history(quiet):
    x, y = make_regression(64)
    ds = torch.utils.data.TensorDataset(x, y)
    return train(TrainConfig(lr=1e-2, epochs=2, batch_size=16), make_mlp(), ds, ds, sink=quiet.append).history


def test_save_load_round_trip(tmp_path, history):
    path = history.save(tmp_path / "h.json")
    loaded = History.load(path)
    assert loaded == history
    assert loaded.steps == history.steps and loaded.epochs == history.epochs
    assert loaded.meta["config"]["lr"] == 1e-2
    json.loads(path.read_text())  # plain JSON on disk


def test_non_finite_values_survive_the_trip(tmp_path):
    h = History(epochs=[{"epoch": 0, "val_loss": float("nan"), "train_loss": float("inf")}])
    loaded = History.load(h.save(tmp_path / "h.json"))
    assert math.isnan(loaded.epochs[0]["val_loss"]) and loaded.epochs[0]["train_loss"] == float("inf")
    assert "NaN" not in (tmp_path / "h.json").read_text()


def test_rows_are_json_safe_python_numbers(history):
    for row in history.steps + history.epochs:
        for v in row.values():
            assert type(v) in (int, float, bool, str), (row, v)
    h = History()
    h.add_epoch({"epoch": 0, "val_loss": torch.tensor(0.5)})
    assert type(h.epochs[0]["val_loss"]) is float
    with pytest.raises(TypeError, match="history values must be numbers"):
        h.add_step({"epoch": object()})


def test_dataframes(history):
    epochs = history.to_dataframe()
    steps = history.to_dataframe("step")
    assert list(epochs.columns[: len(EPOCH_COLUMNS)]) == list(EPOCH_COLUMNS)
    assert list(steps.columns[: len(STEP_COLUMNS)]) == list(STEP_COLUMNS)
    assert len(epochs) == 2 and len(steps) == 8
    rebuilt = History.from_dataframe(epochs, steps)
    assert rebuilt.epochs == history.epochs and rebuilt.steps == history.steps
    assert History().to_dataframe().empty
    with pytest.raises(ValueError, match="level must be 'epoch' or 'step', got 'batch'"):
        history.to_dataframe("batch")


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no history file at"):
        History.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{oops")
    with pytest.raises(ValueError, match="is not valid JSON"):
        History.load(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text('{"epochs": []}')
    with pytest.raises(ValueError, match="not an nbtrain history"):
        History.load(tmp_path / "other.json")


def test_atomic_write_leaves_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "f.txt"
    atomic_write_text(path, "old")
    import os

    def boom(*a, **k):
        raise OSError("rename failed")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic_write_text(path, "new")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]


def test_truncate(history):
    h = history.copy()
    h.truncate(1)
    assert len(h.epochs) == 1 and all(r["epoch"] == 0 for r in h.steps)
    assert len(history.epochs) == 2
