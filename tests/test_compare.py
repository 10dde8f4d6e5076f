"""Run folders: loading, clear errors, summaries and the comparison table."""

from __future__ import annotations

import json

import pytest
from histories import HEALTHY_CONFIG, SEED_CONFIG, healthy_history, seed_frame

from nbtrain import History
from nbtrain import LoadedRun, RunFolderError, compare_runs, load_run, summarize


def write_run(folder, history=None, config=HEALTHY_CONFIG):
    folder.mkdir(parents=True, exist_ok=True)
    if config is not None:
        config.to_json(folder / "config.json")
    (history or healthy_history()).save(folder / "history.json")
    return folder


def test_load_run(tmp_path):
    run = load_run(write_run(tmp_path / "r1"))
    assert isinstance(run, LoadedRun)
    assert run.name == "healthy" and run.config == HEALTHY_CONFIG
    assert run.history == healthy_history()
    unnamed = load_run(write_run(tmp_path / "folder_name", config=None))
    assert unnamed.name == "folder_name" and unnamed.config is None


def test_missing_and_corrupt_folders(tmp_path):
    with pytest.raises(RunFolderError, match=r"run folder .*nope does not exist"):
        load_run(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunFolderError, match=r"empty has no history.json"):
        load_run(tmp_path / "empty")
    bad = write_run(tmp_path / "bad")
    (bad / "history.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(RunFolderError, match=r"history.json could not be read .*not valid JSON.*re-run"):
        load_run(bad)
    (bad / "history.json").write_text(json.dumps({"format": "something else"}), encoding="utf-8")
    with pytest.raises(RunFolderError, match="not an nbtrain history"):
        load_run(bad)
    bad_cfg = write_run(tmp_path / "bad_cfg")
    (bad_cfg / "config.json").write_text('{"lr": -1}', encoding="utf-8")
    with pytest.raises(RunFolderError, match=r"config.json is not a valid nbtrain config \(lr must be > 0"):
        load_run(bad_cfg)
    assert issubclass(RunFolderError, ValueError)
    with pytest.raises(TypeError, match="run_dir must be a path"):
        load_run(3)


def test_summarize():
    s = summarize(healthy_history(), HEALTHY_CONFIG)
    assert s["epochs"] == 12
    assert s["best_val_loss"] == 0.51 and s["best_epoch"] == 11 and s["final_val_loss"] == 0.51
    assert s["lr_cuts"] == 1 and s["final_lr"] == pytest.approx(1e-4)
    assert s["clip_fraction"] == pytest.approx(1 / 240)
    assert s["grad_norm_growth_p50"] == pytest.approx(1.0, abs=0.1)
    json.dumps(s, allow_nan=False)
    seed = summarize(seed_frame(), SEED_CONFIG)
    assert seed["grad_norm_growth_max"] == pytest.approx(18 / 2)  # largest of the last 2 epochs / epoch 0
    assert seed["clip_fraction"] is None and seed["grad_norm_growth_p50"] is None and seed["lr_cuts"] == 0


def test_compare_runs_table_and_png(tmp_path):
    folder = write_run(tmp_path / "a")
    png = tmp_path / "out" / "compare.png"
    table = compare_runs([folder, load_run(folder), ("round 1", History.from_dataframe(seed_frame()))], png=png)
    assert list(table.index) == ["healthy", "healthy (2)", "round 1"]
    assert table.loc["round 1", "best_val_loss"] == 0.5869
    assert {"best_val_loss", "final_val_loss", "grad_norm_growth_p50", "clip_fraction", "lr_cuts"} <= set(table.columns)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_runs_bad_input(tmp_path):
    with pytest.raises(ValueError, match="runs is empty"):
        compare_runs([])
    with pytest.raises(TypeError, match=r"runs\[0\] must be a run folder"):
        compare_runs([42])
    with pytest.raises(TypeError, match="runs must be a list"):
        compare_runs(str(tmp_path))
    with pytest.raises(RunFolderError, match="does not exist"):
        compare_runs([tmp_path / "missing"])
