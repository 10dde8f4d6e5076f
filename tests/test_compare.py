"""Run folders: loading, clear errors, summaries and the comparison table."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from histories import HEALTHY_CONFIG, HEALTHY_VAL, SEED_CONFIG, healthy_history, make_history, seed_frame

from nbtrain import History
from nbtrain import LoadedRun, RunFolderError, compare_runs, load_run, summarize
from nbtrain.views.compare import format_table


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


# -- tables for people (issue 15) -----------------------------------------------------------------
def test_compare_runs_keeps_counts_integer_and_numbers_for_code(tmp_path):
    cosine = HEALTHY_CONFIG.replace(scheduler="cosine_warm_restarts", name="cosine")
    table = compare_runs([("healthy", healthy_history()), ("cosine", make_history(HEALTHY_VAL, config=cosine))])
    assert str(table["lr_cuts"].dtype) == "Int64" and str(table["epochs"].dtype) == "Int64"
    assert table.loc["healthy", "lr_cuts"] == 1 and pd.isna(table.loc["cosine", "lr_cuts"])
    assert table.loc["healthy", "best_val_loss"] == 0.51  # the numbers stay numbers


def test_format_table_per_column():
    cosine = HEALTHY_CONFIG.replace(scheduler="cosine_warm_restarts", name="cosine")
    numeric = compare_runs([("healthy", healthy_history()), ("cosine", make_history(HEALTHY_VAL, config=cosine)),
                            ("round 1", History.from_dataframe(seed_frame()))])
    shown = format_table(numeric)
    assert list(shown.index) == list(numeric.index)
    row = shown.loc["healthy"]
    assert row["lr"] == "1e-3" and row["final_lr"] == "1e-4"  # the LR moved: both kept
    assert row["epochs"] == "12" and row["best_epoch"] == "11" and row["lr_cuts"] == "1"
    assert row["best_val_loss"] == "0.5100" and row["clip_fraction"] == "0.4%"
    assert row["grad_norm_growth_p50"] == f"{numeric.loc['healthy', 'grad_norm_growth_p50']:.3f}×"  # 0.993×
    # one number of decimals per column: no 1.007 under 0.9088, no 4× beside 3.48×
    for column in ("best_val_loss", "grad_norm_growth_p50"):
        cells = [c.rstrip("×") for c in shown[column] if c != "n/a"]
        assert len({len(c.split(".")[1]) for c in cells}) == 1, cells
    assert row["grad_clip"] == "5" and row["patience"] == "2"
    assert shown.loc["cosine", "lr_cuts"] == "n/a (cosine)"
    assert shown.loc["round 1", "clip_fraction"] == "n/a" and shown.loc["round 1", "grad_clip"] == "unknown"
    text = shown.to_string()
    for bad in ("nan", "NaN", "None", "<NA>", "e-05", "0.000"):
        assert bad not in text
    same = format_table(numeric.loc[["healthy"]].assign(final_lr=1e-3))
    assert "final_lr" not in same.columns and same.loc["healthy", "lr"] == "1e-3"  # the same value: one column
    short = format_table(numeric, short=True)
    assert {"best val", "growth p50", "clipped", "LR cuts", "clip"} <= set(short.columns)
    with pytest.raises(TypeError, match="df must be a pandas DataFrame"):
        format_table([1, 2])


def test_format_table_on_a_sweep_table():
    sweep = pd.DataFrame({"lr": [2e-5, 1e-5], "grad_clip": [2.0, None], "seed": [0, 1],
                          "best_val_loss": [0.63246, None],
                          "lr_cuts": [0, None], "final_lr": [2e-5, 1e-5], "epochs_done": [2, 0],
                          "status": ["completed", "failed"], "error": [float("nan"), "worker failed"],
                          "train_time_s": [5.257, float("inf")]})
    shown = format_table(sweep)
    assert list(shown["lr"]) == ["2e-5", "1e-5"] and "final_lr" not in shown.columns
    assert list(shown["grad_clip"]) == ["2", "off"] and list(shown["seed"]) == ["0", "1"]
    assert list(shown["best_val_loss"]) == ["0.6325", "n/a"] and list(shown["lr_cuts"]) == ["0", "n/a"]
    assert list(shown["error"]) == ["", "worker failed"] and list(shown["train_time_s"]) == ["5.26 s", "inf"]


def test_format_table_writes_integer_columns_as_integers():
    # integer dtype (numpy or pandas' nullable Int64) is whole numbers, whatever the column's name;
    # a float column stays a float column even when its values happen to be whole (a loss of 1.0)
    df = pd.DataFrame({"epoch": [0, 1, 12], "lower_in": pd.array([3, None, 12345], dtype="Int64"),
                       "pairs": pd.array([4, 5, 6], dtype="uint8"), "val_loss": [1.0, 2.0, 0.5],
                       "grad_norm_p50": [3.0, 4.0, 5.0], "train_loss": [1, 2, 3], "ratio": [0.25, 1.5, 2.0]})
    shown = format_table(df)
    assert list(shown["epoch"]) == ["0", "1", "12"]
    assert list(shown["lower_in"]) == ["3", "n/a", "12,345"] and list(shown["pairs"]) == ["4", "5", "6"]
    assert list(shown["train_loss"]) == ["1", "2", "3"]  # an integer loss has no decimals to lose
    assert list(shown["val_loss"]) == ["1.0000", "2.0000", "0.5000"]
    assert list(shown["grad_norm_p50"]) == ["3.000", "4.000", "5.000"]
    assert list(shown["ratio"]) == ["0.2500", "1.5000", "2.0000"]
    as_objects = pd.DataFrame({"epoch": pd.Series([0, None, 7], dtype=object)})  # Python ints and a gap
    assert list(format_table(as_objects)["epoch"]) == ["0", "n/a", "7"]


def test_comparison_png_has_a_panel_per_logged_metric(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nbtrain.views import compare

    made = []
    real = plt.subplots
    monkeypatch.setattr(plt, "subplots", lambda *a, **k: made.append(real(*a, **k)) or made[-1])
    png = tmp_path / "c.png"
    compare.write_comparison_png({"a": healthy_history(), "b": History.from_dataframe(seed_frame())}, png)
    fig, axes = made[0]
    assert [ax.get_title() for ax in axes[0]] == ["Validation loss", "Median pre-clip gradient norm", "Steps clipped"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
