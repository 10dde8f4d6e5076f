"""read_log on logs that the real libraries wrote (tests/real_logs.py), checked against the raw files.

Each library runs once per session on a tiny model. Edge cases transform a real file
(line endings, a byte-order mark, blanked cells); no log is typed by hand.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import real_logs
from ci import require

import nbtrain
from nbtrain import History, LogFormatError, compare_runs, load_run, read_log
from nbtrain.cli import main


# -- the real runs, once per session ------------------------------------------------------
@pytest.fixture(scope="session")
def real(tmp_path_factory):
    return tmp_path_factory.mktemp("real_logs")


@pytest.fixture(scope="session")
def hf_out(real):
    require("transformers", "the Hugging Face logs need transformers: pip install nbtrain[transformers]")
    require("tensorboard", "the Trainer's TensorBoard events need tensorboard: pip install nbtrain[tensorboard]")
    return real_logs.huggingface_run(real / "hf")


@pytest.fixture(scope="session")
def hf_nan(real):
    require("transformers", "the Hugging Face logs need transformers: pip install nbtrain[transformers]")
    return real_logs.huggingface_run(real / "hf_nan", diverge=True)


@pytest.fixture(scope="session")
def lightning_a(real):
    require("lightning", "the Lightning logs need lightning: pip install nbtrain[lightning]")
    return real_logs.lightning_run(real / "pl_a", "a")


@pytest.fixture(scope="session")
def lightning_b(real):
    require("lightning", "the Lightning logs need lightning: pip install nbtrain[lightning]")
    return real_logs.lightning_run(real / "pl_b", "b")


@pytest.fixture(scope="session")
def keras_csv(real):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    require("keras", "the Keras logs need keras 3 (torch backend): pip install keras")
    return real_logs.keras_runs(real)


@pytest.fixture(scope="session")
def nb_run(real):
    require("tensorboard", "TensorBoardCallback needs tensorboard: pip install nbtrain[tensorboard]")
    return real_logs.nbtrain_run(real / "nb", tensorboard=real / "nb_tb"), real / "nb_tb"


@pytest.fixture(scope="session")
def trial(real):
    return real_logs.sweep_trial(real / "sweep")


# -- helpers --------------------------------------------------------------------------------
def _same(a, b) -> bool:
    """Equal floats, NaN equal to NaN."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def _rows_equal(got: list[dict], want: list[dict]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert set(g) == set(w), (g, w)
        assert all(_same(g[k], w[k]) for k in w), (g, w)


def _state(folder: Path) -> list[dict]:
    return json.loads((folder / "trainer_state.json").read_text())["log_history"]


def _hf_expected(entries: list[dict]) -> tuple[list[dict], list[dict]]:
    """The step and evaluation rows the issue specifies, straight from log_history."""
    steps = [{"step": e["step"], "epoch": e["epoch"], "loss": e["loss"], "grad_norm": e["grad_norm"],
              "lr": e["learning_rate"]} for e in entries if "loss" in e]
    evals = [{"step": e["step"], "epoch": e["epoch"], "val_loss": e["eval_loss"]} for e in entries if "eval_loss" in e]
    return steps, evals


def _csv_rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


# -- Hugging Face -----------------------------------------------------------------------------
def test_huggingface_rows_equal_the_trainer_state(hf_out):
    history = read_log(hf_out)
    entries = _state(hf_out)
    steps, evals = _hf_expected(entries)
    _rows_equal(history.steps, steps)
    _rows_equal(history.epochs, evals)
    # 40 steps logged every 3, evaluated every 10: fractional epochs (7.5 steps an epoch)
    assert [r["step"] for r in history.steps] == list(range(3, 40, 3))
    assert [(r["step"], r["epoch"]) for r in history.epochs] == [(10, 1.25), (20, 2.5), (30, 3.75), (40, 5.0)]
    assert history.steps[0]["epoch"] == 0.375
    assert any("train_runtime" in e for e in entries)  # the summary entry is there, and is not a step
    assert sum("summary entry" in n for n in history.meta["notes"]) == 1
    meta = history.meta
    assert meta["source"] == {"format": "huggingface", "path": str(hf_out / "trainer_state.json")}
    assert meta["columns"]["learning_rate"] == "lr" and meta["columns"]["eval_loss"] == "val_loss"
    assert meta["evaluation_unit"] == "step" and "config" not in meta


def test_huggingface_folder_shapes(hf_out, tmp_path):
    whole = read_log(hf_out)
    assert read_log(hf_out / "trainer_state.json") == whole
    checkpoint = read_log(hf_out / "checkpoint-20")
    assert [r["step"] for r in checkpoint.epochs] == [10, 20]
    # an output folder without trainer_state.json: its latest checkpoint's
    copy = tmp_path / "out"
    shutil.copytree(hf_out, copy, ignore=lambda d, names: ["trainer_state.json", "runs"] if Path(d) == hf_out else [])
    latest = read_log(copy)
    assert latest.meta["source"]["path"] == str(copy / "checkpoint-40" / "trainer_state.json")
    assert any("checkpoint-40" in n and "latest of 2" in n for n in latest.meta["notes"])
    _rows_equal(latest.steps, whole.steps)  # the summary entry comes after the last checkpoint: same rows


def test_huggingface_opens_no_pickle(hf_out):
    assert (hf_out / "checkpoint-40" / "training_args.bin").is_file()
    opened, watching = [], [False]

    def hook(event, args):
        if watching[0] and event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
            opened.append(os.fsdecode(args[0]))

    sys.addaudithook(hook)
    watching[0] = True
    try:
        read_log(hf_out / "checkpoint-40")
        read_log(hf_out)
    finally:
        watching[0] = False
    binary = [p for p in opened if p.endswith((".bin", ".pt", ".pth", ".safetensors"))]
    assert not binary and any(p.endswith("trainer_state.json") for p in opened)


def test_huggingface_nan_and_infinity_tokens(hf_nan):
    text = (hf_nan / "trainer_state.json").read_text()
    assert "NaN" in text and "Infinity" in text
    history = read_log(hf_nan)
    steps, evals = _hf_expected(_state(hf_nan))
    _rows_equal(history.steps, steps)  # NaN where the file says NaN
    _rows_equal(history.epochs, evals)
    norms = [r["grad_norm"] for r in history.steps]
    assert any(math.isinf(v) for v in norms) and any(math.isnan(v) for v in norms)
    assert len(history.steps) == 24 and all(set(r) == {"step", "epoch", "loss", "grad_norm", "lr"} for r in history.steps)


def test_tensorboard_events_of_the_trainer_match_its_state(hf_out):
    events = read_log(hf_out / "runs")
    assert events.meta["source"]["format"] == "tensorboard"
    state = read_log(hf_out)
    assert len(events.steps) == len(state.steps) and len(events.epochs) == len(state.epochs)
    for got, want in zip(events.steps + events.epochs, state.steps + state.epochs):
        assert set(got) == set(want)
        assert got["step"] == want["step"]
        assert all(got[k] == pytest.approx(want[k], rel=1e-6) for k in want)  # float32 in the events
    assert events.meta["evaluation_unit"] == "step"


# -- Lightning --------------------------------------------------------------------------------
def _cells(rows: list[dict], column: str) -> list[tuple[int, float]]:
    return [(int(r["step"]), float(r[column])) for r in rows if r[column] != ""]


def test_lightning_rows_equal_metrics_csv(lightning_a):
    raw = _csv_rows(lightning_a / "metrics.csv")
    history = read_log(lightning_a)
    for column, name in (("train_loss_step", "loss"), ("lr-AdamW", "lr"), ("grad_2.0_norm_total", "grad_norm")):
        assert [(r["step"], r[name]) for r in history.steps if name in r] == _cells(raw, column)
    assert [r["step"] for r in history.steps] == list(range(32))  # 4 epochs of 8 steps, one row each
    assert all(r["epoch"] == r["step"] // 8 for r in history.steps)
    want_val = [(int(r["epoch"]), int(r["step"]), float(r["val_loss"])) for r in raw if r["val_loss"]]
    assert [(r["epoch"], r["step"], r["val_loss"]) for r in history.epochs] == want_val
    assert len(want_val) == 8  # every 4 steps: two evaluations an epoch
    ends = [(int(r["epoch"]), float(r["train_loss_epoch"])) for r in raw if r["train_loss_epoch"]]
    assert [(r["epoch"], r["train_loss"]) for r in history.epochs if "train_loss" in r] == ends
    # sparse cells are absent, never NaN
    assert all("train_loss" not in r for r in history.epochs[0::2])
    assert all(set(r) == {"step", "epoch", "loss", "lr", "grad_norm"} for r in history.steps)
    lrs = sorted({r["lr"] for r in history.steps}, reverse=True)
    assert lrs == [0.01, 0.005, 0.0025, 0.00125]  # StepLR halves it every 10 steps
    meta = history.meta
    assert meta["config"] == {"grad_clip": 1.0}  # gradient_clip_val in hparams.yaml
    assert meta["evaluation_unit"] == "step"
    assert any("'grad_2.0_norm/net.0.weight'" in n for n in meta["notes"])  # per-parameter norms: named, not read


def test_lightning_naming_variants(lightning_b):
    raw = _csv_rows(lightning_b / "metrics.csv")
    history = read_log(lightning_b / "metrics.csv")
    assert history.meta["columns"] == {"epoch": "epoch", "loss": "loss", "lr-SGD/pg1": "lr", "step": "step",
                                       "valid_loss": "val_loss"}
    assert [(r["step"], r["loss"]) for r in history.steps] == _cells(raw, "loss")
    assert {r["lr"] for r in history.steps} == {0.01}  # the first parameter group's
    assert any("'lr-SGD/pg2'" in n for n in history.meta["notes"])
    assert [(r["epoch"], r["val_loss"]) for r in history.epochs] == [(int(r["epoch"]), float(r["valid_loss"]))
                                                                     for r in raw if r["valid_loss"]]
    assert history.meta["evaluation_unit"] == "epoch" and "config" not in history.meta  # gradient_clip_val: null
    assert not any("grad_norm" in r for r in history.steps)


def test_lightning_folder_shapes(lightning_a):
    version = read_log(lightning_a)
    root = lightning_a.parent.parent  # CSVLogger(save_dir): save_dir/lightning_logs/version_0
    for path in (root, root / "lightning_logs", lightning_a / "metrics.csv"):
        assert read_log(path) == version
    assert read_log(root).meta["source"]["format"] == "lightning"


def test_columns_override_the_alias_table(lightning_a):
    history = read_log(lightning_a, columns={"grad_2.0_norm/net.2.weight": "grad_norm", "lr-AdamW": None})
    raw = _csv_rows(lightning_a / "metrics.csv")
    assert [(r["step"], r["grad_norm"]) for r in history.steps] == _cells(raw, "grad_2.0_norm/net.2.weight")
    assert not any("lr" in r for r in history.steps)
    assert history.meta["columns"]["grad_2.0_norm/net.2.weight"] == "grad_norm"


# -- Keras -------------------------------------------------------------------------------------
def test_keras_appended_runs(keras_csv):
    raw = _csv_rows(keras_csv)
    assert [r["epoch"] for r in raw] == [str(e) for e in (*range(8), *range(4))]  # the counter restarts

    def rows(lines):
        return [{"epoch": int(r["epoch"]), "train_loss": float(r["loss"]), "val_loss": float(r["val_loss"]),
                 "lr": float(r["learning_rate"])} for r in lines]

    last = read_log(keras_csv)
    _rows_equal(last.epochs, rows(raw[8:]))
    assert last.steps == [] and last.meta["evaluation_unit"] == "epoch"
    assert any("2 appended runs" in n and "read the last" in n for n in last.meta["notes"])
    assert any("'mae', 'val_mae'" in n for n in last.meta["notes"])
    first = read_log(keras_csv, appended=0)
    _rows_equal(first.epochs, rows(raw[:8]))
    assert first.epochs[4]["lr"] == pytest.approx(first.epochs[3]["lr"] / 2)  # ReduceLROnPlateau's cut, as logged
    joined = read_log(keras_csv, appended="continue")
    assert [r["epoch"] for r in joined.epochs] == list(range(12))
    assert [r["val_loss"] for r in joined.epochs] == [float(r["val_loss"]) for r in raw]
    with pytest.raises(ValueError, match=r"appended=5: the file holds 2 runs"):
        read_log(keras_csv, appended=5)
    with pytest.raises(ValueError, match="appended must be 'last', 'continue' or a run index"):
        read_log(keras_csv, appended="first")


# -- the same file, written differently ----------------------------------------------------------
def _rewrite(path: Path, out: Path, line_end: str = "\r\r\n", bom: bool = False, quote: bool = False) -> Path:
    rows = list(csv.reader(open(path, newline="", encoding="utf-8")))
    with open(out, "w", newline="", encoding="utf-8-sig" if bom else "utf-8") as fh:
        csv.writer(fh, lineterminator=line_end, quoting=csv.QUOTE_ALL if quote else csv.QUOTE_MINIMAL).writerows(rows)
    return out


def test_line_endings_bom_and_quotes(keras_csv, lightning_a, tmp_path):
    assert b"\r\n" in keras_csv.read_bytes()  # CSVLogger's own line endings
    for source, name in ((keras_csv, "k.csv"), (lightning_a / "metrics.csv", "metrics.csv")):
        want = read_log(source)
        for i, variant in enumerate(({}, {"bom": True, "quote": True}, {"line_end": "\n"}, {"line_end": "\r"})):
            folder = tmp_path / f"{name}-{i}"
            folder.mkdir()
            got = read_log(_rewrite(source, folder / name, **variant))
            assert got == want and got.meta["source"]["format"] == want.meta["source"]["format"], variant


def test_blank_and_na_cells_are_absent(lightning_a, keras_csv, tmp_path):
    rows = list(csv.reader(open(lightning_a / "metrics.csv", newline="")))
    col = rows[0].index("grad_2.0_norm_total")
    target = next(i for i, r in enumerate(rows) if r[rows[0].index("step")] == "5" and r[col])
    rows[target][col] = ""
    path = tmp_path / "metrics.csv"
    csv.writer(open(path, "w", newline="")).writerows(rows)
    history = read_log(path)
    assert "grad_norm" not in history.steps[5] and "loss" in history.steps[5]
    assert all("grad_norm" in r for r in history.steps if r["step"] != 5)

    lines = keras_csv.read_text().splitlines()
    header = lines[0].split(",")
    cells = lines[-1].split(",")
    cells[header.index("val_loss")] = "NA"  # what Keras writes for a key an epoch did not log
    path = tmp_path / "k.csv"
    path.write_text("\n".join(lines[:-1] + [",".join(cells)]) + "\n")
    last = read_log(path).epochs[-1]
    assert "val_loss" not in last and last["train_loss"] == float(cells[header.index("loss")])


# -- plain CSV and JSON lines (real rows rewritten) -----------------------------------------------
def test_csv_with_well_known_names_and_columns(nb_run, tmp_path):
    run, _ = nb_run
    history = load_run(run).history
    path = tmp_path / "steps.csv"
    history.to_dataframe("step").to_csv(path, index=False)
    got = read_log(path)
    assert got.meta["source"]["format"] == "csv"
    assert [{k: r[k] for k in ("step", "epoch", "loss", "grad_norm", "lr", "clipped")} for r in got.steps] == [
        {k: r[k] for k in ("step", "epoch", "loss", "grad_norm", "lr", "clipped")} for r in history.steps]
    renamed = tmp_path / "renamed.csv"
    frame = history.to_dataframe("step").rename(columns={"step": "iteration", "loss": "training_loss",
                                                         "grad_norm": "gnorm", "lr": "learning_rate"})
    frame.to_csv(renamed, index=False)
    plain = read_log(renamed)
    assert all("grad_norm" not in r for r in plain.steps) and any("'gnorm'" in n for n in plain.meta["notes"])
    mapped = read_log(renamed, columns={"gnorm": "grad_norm"})
    assert [r["grad_norm"] for r in mapped.steps] == [r["grad_norm"] for r in history.steps]
    assert [r["lr"] for r in mapped.steps] == [r["lr"] for r in history.steps]
    epochs = tmp_path / "epochs.csv"
    history.to_dataframe("epoch").to_csv(epochs, index=False)
    got = read_log(epochs)
    assert [r["val_loss"] for r in got.epochs] == [r["val_loss"] for r in history.epochs]
    assert got.steps == [] and got.meta["evaluation_unit"] == "epoch"


def test_jsonl_of_trainer_entries(hf_nan, tmp_path):
    entries = [e for e in _state(hf_nan) if "train_runtime" not in e]
    path = tmp_path / "log.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in entries) + "\n")  # NaN tokens, one entry a line
    got = read_log(path)
    state = read_log(hf_nan)
    assert got.meta["source"]["format"] == "jsonl"
    _rows_equal(got.steps, state.steps)
    _rows_equal(got.epochs, state.epochs)


# -- nbtrain's own folders ----------------------------------------------------------------------
def test_nbtrain_run_folder_trial_and_tensorboard(nb_run, trial):
    run, tb = nb_run
    loaded = load_run(run)
    history = read_log(run)
    assert history == loaded.history and history.meta["config"] == loaded.config.to_dict()
    assert history.meta["source"] == {"format": "nbtrain", "path": str(run / "history.json")}
    assert read_log(run / "history.json") == loaded.history
    got = read_log(trial)
    assert got.meta["source"]["format"] == "nbtrain-sweep-trial" and "sweep trial: completed" in got.meta["notes"]
    assert got == load_run(trial).history
    events = read_log(tb)
    assert events.meta["evaluation_unit"] == "epoch" and len(events.steps) == len(history.steps)
    for got_row, want in zip(events.steps, history.steps):
        assert got_row["clipped"] is want["clipped"]
        for key in ("loss", "grad_norm", "lr", "clip_factor"):
            assert got_row[key] == pytest.approx(want[key], rel=1e-6)
    for got_row, want in zip(events.epochs, history.epochs):
        assert got_row["epoch"] == want["epoch"]
        for key in ("train_loss", "val_loss", "lr", "clip_fraction", "grad_norm_max"):
            assert got_row[key] == pytest.approx(want[key], rel=1e-6)


def test_auto_detection_of_each_shape(hf_out, lightning_a, keras_csv, nb_run, trial):
    run, tb = nb_run
    shapes = {
        hf_out: "huggingface", hf_out / "checkpoint-20": "huggingface", hf_out / "runs": "tensorboard",
        lightning_a: "lightning", lightning_a.parent.parent: "lightning", keras_csv: "keras",
        run: "nbtrain", trial: "nbtrain-sweep-trial", tb: "tensorboard", next(tb.iterdir()): "tensorboard",
    }
    for path, fmt in shapes.items():
        assert read_log(path).meta["source"]["format"] == fmt, path
    assert read_log(keras_csv, format="csv").meta["source"]["format"] == "csv"  # format= forces a reader


# -- errors -------------------------------------------------------------------------------------
def test_errors_name_the_file_the_formats_tried_and_what_was_missing(hf_out, keras_csv, tmp_path):
    assert issubclass(LogFormatError, ValueError)
    (tmp_path / "empty").mkdir()
    with pytest.raises(LogFormatError) as info:
        read_log(tmp_path / "empty")
    message = str(info.value)
    assert "\n" not in message and str(tmp_path / "empty") in message
    for part in ("nbtrain (no history.json)", "huggingface (no trainer_state.json", "lightning (no metrics.csv",
                 "tensorboard (no events.out.tfevents", "keras, csv and jsonl read a file"):
        assert part in message
    unknown = tmp_path / "other.csv"
    unknown.write_text("when,what\n1,2\n")
    with pytest.raises(LogFormatError, match=r"other.csv: .*tried lightning .*; keras .*; csv \(no column nbtrain "
                                             r"knows .*columns=") as info:
        read_log(unknown)
    assert "\n" not in str(info.value)
    with pytest.raises(LogFormatError, match="model.safetensors: a binary file"):
        read_log(hf_out / "checkpoint-40" / "model.safetensors")
    with pytest.raises(LogFormatError, match=r"tried keras \(reads a file"):
        read_log(hf_out, format="keras")
    bad = tmp_path / "bad.csv"
    lines = keras_csv.read_text().splitlines()
    bad.write_text("\n".join(lines[:3] + ["2,0.01,oops,1,1,1"]) + "\n")
    with pytest.raises(LogFormatError, match=r"bad.csv, line 4, column 'loss' \(train_loss\): 'oops' is not a number"):
        read_log(bad)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_log(tmp_path / "missing.csv")
    with pytest.raises(ValueError, match="format must be 'auto' or one of"):
        read_log(keras_csv, format="excel")
    with pytest.raises(ValueError, match=r"columns\['x'\] = 'validation' is not an nbtrain name"):
        read_log(keras_csv, columns={"x": "validation"})
    with pytest.raises(TypeError, match="path must be a file or folder path"):
        read_log(3)


def test_a_trainer_state_with_no_entries_yet(hf_out, tmp_path):
    state = json.loads((hf_out / "trainer_state.json").read_text())
    state["log_history"] = []
    path = tmp_path / "trainer_state.json"
    path.write_text(json.dumps(state))
    with pytest.raises(LogFormatError, match=r"tried huggingface \(log_history holds no training or evaluation entry yet\)"):
        read_log(path)


# -- diagnosis, command line, comparison ----------------------------------------------------------
def test_diagnose_takes_a_path(hf_out, lightning_a, keras_csv):
    for path in (hf_out, lightning_a, keras_csv):
        by_path = nbtrain.diagnose(path)
        assert by_path.codes == nbtrain.diagnose(read_log(path)).codes


def test_cli_diagnose_a_log(hf_out, capsys):
    assert main(["diagnose", str(hf_out), "--clip", "1.0"]) == 0
    out = capsys.readouterr().out
    history = read_log(hf_out)
    history.meta["config"] = {"grad_clip": 1.0}
    assert out == nbtrain.diagnose(history).to_markdown() + "\n"
    assert main(["diagnose", str(hf_out), "--format", "json", "--log-format", "huggingface"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [f["code"] for f in data["findings"]] == list(nbtrain.diagnose(read_log(hf_out)).codes)
    assert main(["diagnose", str(hf_out), "--clip", "0"]) == 2
    assert "--clip must be > 0, got 0.0" in capsys.readouterr().err


def test_cli_compare_two_logs_of_different_formats(hf_out, lightning_a, capsys):
    root = lightning_a.parent.parent
    assert main(["compare", str(hf_out), str(root), "--no-png"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line.split() for line in out.splitlines() if line.split()}
    header = next(line.split() for line in out.splitlines() if "best_val_loss" in line)
    column = header.index("best_val_loss") + 1
    hf_best = min(e["eval_loss"] for e in _state(hf_out) if "eval_loss" in e)
    pl_best = min(float(r["val_loss"]) for r in _csv_rows(lightning_a / "metrics.csv") if r["val_loss"])
    assert float(lines[hf_out.name][column]) == pytest.approx(hf_best, rel=1e-3)
    assert float(lines[root.name][column]) == pytest.approx(pl_best, rel=1e-3)


def test_compare_runs_takes_log_paths(hf_out, keras_csv, nb_run):
    table = compare_runs([hf_out, keras_csv, nb_run[0]])
    assert list(table.index) == ["hf", "training.log", "tiny"]
    assert table.loc["training.log", "best_val_loss"] == min(r["val_loss"] for r in read_log(keras_csv).epochs)


def test_reading_a_log_loads_no_heavy_library(keras_csv):
    code = (f"import sys; from nbtrain import read_log; h = read_log({str(keras_csv)!r}); "
            "print(len(h.epochs), sorted(m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'pandas', 'numpy', 'tensorboard', 'transformers', 'lightning', 'keras')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "4 []"


def test_history_round_trip_keeps_absent_cells(lightning_a, tmp_path):
    history = read_log(lightning_a)
    history.save(tmp_path / "h.json")
    assert History.load(tmp_path / "h.json") == history


def test_hparams_yaml_is_data_only(lightning_a, tmp_path, monkeypatch):
    folder = tmp_path / "version_0"
    shutil.copytree(lightning_a, folder)
    hparams = folder / "hparams.yaml"
    hparams.write_text(hparams.read_text() + "model: !!python/object/apply:os.system ['echo pwned']\n")
    history = read_log(folder)
    assert "config" not in history.meta  # safe_load refused the whole file: nothing taken from it
    assert any(n.startswith("hparams.yaml not read (only plain YAML is)") for n in history.meta["notes"])
    assert history == read_log(lightning_a)
    monkeypatch.setitem(sys.modules, "yaml", None)  # PyYAML not installed
    history = read_log(lightning_a)
    assert "config" not in history.meta and "hparams.yaml not read: PyYAML is not installed" in history.meta["notes"]


def test_tensorboard_missing_names_the_extra(hf_out, monkeypatch, capsys):
    for name in ("tensorboard", "tensorboard.backend.event_processing.event_accumulator"):
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed (an import raises ImportError)
    with pytest.raises(ImportError, match=r"pip install nbtrain\[tensorboard\]"):
        read_log(hf_out / "runs")
    assert main(["diagnose", str(hf_out / "runs")]) == 2
    assert "needs the tensorboard package" in capsys.readouterr().err


def test_appended_rows_with_other_columns_are_left_out(keras_csv, tmp_path):
    # A second fit without ReduceLROnPlateau appends rows without the learning_rate cell under the
    # first fit's header (CSVLogger writes no new header): their columns cannot be known.
    rows = list(csv.reader(open(keras_csv, newline="")))
    lr = rows[0].index("learning_rate")
    path = tmp_path / "k.csv"
    csv.writer(open(path, "w", newline="")).writerows(rows[:9] + [r[:lr] + r[lr + 1:] for r in rows[9:]])
    history = read_log(path)
    assert [r["epoch"] for r in history.epochs] == list(range(8))
    assert any(n.startswith("4 line(s) with another number of cells than the header's 6 left out (lines 10-13)")
               for n in history.meta["notes"])
