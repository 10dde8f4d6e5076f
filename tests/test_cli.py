import json
import subprocess
import sys

import pytest
import torch
from torch.utils.data import TensorDataset

from nbtrain import TrainConfig, diagnose, load_run, train
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


def _diagnosis_of(run_dir):
    loaded = load_run(run_dir)
    return diagnose(loaded.history, loaded.config)


def test_diagnose_prints_the_markdown_report(two_runs, capsys):
    assert main(["diagnose", str(two_runs[0])]) == 0
    out = capsys.readouterr().out
    report = _diagnosis_of(two_runs[0])
    assert report.findings, "the tiny run should have findings for the report to show"
    assert out == report.to_markdown() + "\n"
    assert out.startswith("# Training diagnosis\n")


def test_diagnose_json(two_runs, capsys):
    assert main(["diagnose", str(two_runs[0]), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    report = _diagnosis_of(two_runs[0])
    assert [f["code"] for f in data["findings"]] == list(report.codes) != []


def _table_rows(out: str, names) -> dict[str, dict[str, str]]:
    """The rows of a printed DataFrame whose first cell is one of ``names``, keyed by it."""
    lines = out.splitlines()
    header = next(line.split() for line in lines if "best_val_loss" in line)
    rows = {}
    for line in lines:
        cells = line.split()
        if cells and cells[0] in names:
            assert len(cells) == len(header) + 1, line
            rows[cells[0]] = dict(zip(header, cells[1:]))
    return rows


def test_compare_prints_a_table_and_writes_a_png(two_runs, tmp_path, capsys):
    png = tmp_path / "cmp.png"
    assert main(["compare", *map(str, two_runs), "--png", str(png)]) == 0
    out = capsys.readouterr().out
    rows = _table_rows(out, {"a", "b"})
    assert list(rows) == ["a", "b"]  # one row per run, labelled by the run's name, in order
    for run_dir in two_runs:
        history = load_run(run_dir).history
        best = min(r["val_loss"] for r in history.epochs)
        assert float(rows[run_dir.name]["best_val_loss"]) == pytest.approx(best, rel=1e-3)
        assert rows[run_dir.name]["epochs"] == "3"
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


def test_demo_in_a_short_mode_writes_both_runs_and_the_summary(tmp_path, capsys):
    # `nbtrain demo --epochs 1`: the README's main command, on one epoch of round 1 and round 2.
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--epochs", "1", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    for name, lr in (("round1", 2e-5), ("round2", 1e-5)):
        folder = out / name
        assert {"config.json", "history.json", "checkpoint.pt", "status.json"} <= {p.name for p in folder.iterdir()}
        status = json.loads((folder / "status.json").read_text())
        assert status["status"] == "completed" and status["epochs"] == 1
        config = TrainConfig.from_json(folder / "config.json")
        assert config.epochs == 1 and config.name == name and config.lr == lr
    assert "epoch 0 (of 0-0): train" in printed  # epochs count from 0, with the run's range
    assert "== training round1 (lr 2e-5, clip 2, patience 5, epochs 0-0, seed 0)" in printed
    lines = printed.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("run "))
    assert all(len(line) <= 100 for line in lines[header:-1])  # the table, its legend and the verdict
    rows = {line.split()[0]: line.split() for line in lines[header + 1:header + 3]}
    assert list(rows) == ["round1", "round2"] and rows["round1"][1] == "2e-5" and rows["round2"][1] == "1e-5"
    best = {n: min(r["val_loss"] for r in load_run(out / n).history.epochs) for n in rows}
    assert [float(rows[n][4]) for n in rows] == [pytest.approx(best[n], rel=1e-3) for n in rows]
    verdict = " ".join(lines[lines.index(next(x for x in lines if x.startswith("Verdict: "))):]).split("summary")[0]
    assert "Against round1, round2 changed the learning rate from 2e-5 to 1e-5" in verdict
    assert f"summary written to {out / 'summary.md'}" in printed
    summary = (out / "summary.md").read_text()
    assert summary.startswith("# nbtrain demo: round 1 vs round 2\n\n**Verdict.** Against round1, round2 changed ")
    assert "| run | lr | clip | patience | best val |" in summary
    headings = [line for line in summary.splitlines() if line.startswith("#")]
    assert headings[0] == "# nbtrain demo: round 1 vs round 2" and all(not h.startswith("# ") for h in headings[1:])
    for heading in ("## Side by side", "## The write-up's expectations, checked on round2",
                    "## Diagnosis of round1", "## Diagnosis of round2"):
        assert heading in headings
    for name in ("round1", "round2"):  # each diagnosis nests under its own heading
        nested = headings[headings.index(f"## Diagnosis of {name}") + 1]
        assert nested == "### Issues identified"
    assert (out / "summary.png").stat().st_size > 10_000
