import json
import subprocess
import sys

import pytest
import torch
from torch.utils.data import TensorDataset

from nbtrain import TrainConfig, train
from nbtrain.cli import main

from tasks import make_mlp, make_regression


@pytest.fixture
def two_runs(tmp_path, quiet):
    x, y = make_regression(64)
    xv, yv = make_regression(32, seed=1)
    dirs = []
    for lr, name in ((1e-2, "a"), (3e-2, "b")):
        out = tmp_path / name
        train(TrainConfig(lr=lr, epochs=3, batch_size=16, name=name), make_mlp(), TensorDataset(x, y),
              TensorDataset(xv, yv), out=out, sink=quiet.append)
        dirs.append(out)
    return dirs


def test_diagnose_prints_the_markdown_report(two_runs, capsys):
    assert main(["diagnose", str(two_runs[0])]) == 0
    out = capsys.readouterr().out
    assert "## Issues identified" in out or "No issues" in out or "Training diagnosis" in out


def test_diagnose_json(two_runs, capsys):
    assert main(["diagnose", str(two_runs[0]), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert "findings" in data


def test_compare_prints_a_table_and_writes_a_png(two_runs, tmp_path, capsys):
    png = tmp_path / "cmp.png"
    assert main(["compare", *map(str, two_runs), "--png", str(png)]) == 0
    out = capsys.readouterr().out
    assert "best_val_loss" in out and "a" in out and "b" in out
    assert png.stat().st_size > 1000


@pytest.mark.parametrize(
    "argv,message",
    [
        (["diagnose", "/nonexistent/run"], "does not exist"),
        (["compare", "/nonexistent/a", "/nonexistent/b"], "does not exist"),
        (["compare", "/only/one"], "at least two run folders"),
        (["train", "--preset", "round3"], "unknown preset 'round3'"),
        (["train", "--grad-clip", "0"], r"grad_clip must be > 0, got 0.0"),
        (["train", "--preset", "round1", "--config", "x.json"], "give --preset or --config, not both"),
    ],
)
def test_errors_are_one_line_not_a_traceback(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_corrupt_run_folder(tmp_path, capsys):
    (tmp_path / "history.json").write_text("{broken")
    assert main(["diagnose", str(tmp_path)]) == 2
    assert "could not be read" in capsys.readouterr().err


def test_train_refuses_to_overwrite(two_runs, capsys):
    assert main(["train", "--out", str(two_runs[0]), "--epochs", "1"]) == 2
    assert "already holds a run" in capsys.readouterr().err


def test_console_script_runs():
    result = subprocess.run([sys.executable, "-m", "nbtrain", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "diagnose" in result.stdout


@pytest.mark.slow
def test_train_writes_a_run_folder_and_resumes(tmp_path, capsys):
    out = tmp_path / "r1"
    assert main(["train", "--preset", "round1", "--epochs", "1", "--out", str(out), "--no-progress"]) == 0
    assert {"config.json", "history.json", "checkpoint.pt", "status.json"} <= {p.name for p in out.iterdir()}
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 1
    config = TrainConfig.from_json(out / "config.json")
    assert config.lr == 2e-5 and config.epochs == 1
    assert main(["train", "--preset", "round1", "--epochs", "2", "--out", str(out), "--resume", "--no-progress"]) == 0
    assert json.loads((out / "status.json").read_text())["epochs"] == 2
