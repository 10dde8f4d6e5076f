"""read_log and diagnose on 10,000-entry logs: a Hugging Face trainer_state.json and a Lightning metrics.csv.

    python benchmarks/bench_logs.py [--entries 10000] [--reps 5]

Each log starts as a real one: a tiny Hugging Face Trainer run and a tiny Lightning run
(``tests/real_logs.py``, seconds each). It is then repeated, steps and epochs shifted by the
real run's span each time, until it holds ``--entries`` training entries (the Trainer's
evaluation entries and Lightning's validation and LR rows come along). Printed per log: its
size, then the median and range over ``--reps`` repetitions of ``read_log(path)``,
``nbtrain.diagnose(history)`` on the History read, and ``nbtrain.diagnose(path)`` (both).
Wall times on a shared machine are noisy; they are reported, never asserted.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import nbtrain  # noqa: E402
import real_logs  # noqa: E402
from nbtrain import read_log  # noqa: E402


def long_trainer_state(real: Path, out: Path, entries: int) -> Path:
    """The real ``trainer_state.json`` with its log_history repeated up to ``entries`` training entries."""
    state = json.loads((real / "trainer_state.json").read_text())
    history = [e for e in state["log_history"] if "train_runtime" not in e]
    span_steps, span_epochs = state["global_step"], state["epoch"]
    logs, k = [], 0
    while sum("loss" in e for e in logs) < entries:
        logs += [{**e, "step": e["step"] + k * span_steps, "epoch": e["epoch"] + k * span_epochs} for e in history]
        k += 1
    n_train = 0
    for i, e in enumerate(logs):  # cut after the entries-th training entry
        n_train += "loss" in e
        if n_train == entries:
            logs = logs[: i + 1]
            break
    state["log_history"] = logs
    state["global_step"] = logs[-1]["step"]
    path = out / "trainer_state.json"
    path.write_text(json.dumps(state, indent=2))
    return path


def long_metrics_csv(real: Path, out: Path, entries: int) -> Path:
    """The real ``metrics.csv`` repeated up to ``entries`` training rows (``train_loss_step`` cells)."""
    with open(real / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    fields = list(rows[0])
    span_steps = max(int(r["step"]) for r in rows) + 1
    span_epochs = max(int(r["epoch"]) for r in rows if r["epoch"]) + 1
    written, k, n_train = [], 0, 0
    while n_train < entries:
        for r in rows:
            if r["train_loss_step"] and n_train == entries:
                break
            n_train += bool(r["train_loss_step"])
            shifted = dict(r, step=str(int(r["step"]) + k * span_steps))
            if r["epoch"]:
                shifted["epoch"] = str(int(r["epoch"]) + k * span_epochs)
            written.append(shifted)
        k += 1
    path = out / "metrics.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(written)
    return path


def timed(fn, reps: int) -> tuple[float, float, float, object]:
    times, result = [], None
    for _ in range(reps):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times), max(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        hf = real_logs.huggingface_run(tmp / "hf")
        pl = real_logs.lightning_run(tmp / "pl", "a")
        for folder in ("hf_long", "pl_long"):
            (tmp / folder).mkdir()
        logs = {
            "huggingface trainer_state.json": long_trainer_state(hf, tmp / "hf_long", args.entries),
            "lightning metrics.csv": long_metrics_csv(pl, tmp / "pl_long", args.entries),
        }
        print(f"read_log and diagnose, {args.entries:,} training entries, median of {args.reps} (min-max), seconds")
        print("| log | size | step rows | evaluation rows | read_log | diagnose(history) | diagnose(path) |")
        print("|---|---|---|---|---|---|---|")
        for name, path in logs.items():
            read = timed(lambda: read_log(path), args.reps)
            history = read[3]
            diag = timed(lambda: nbtrain.diagnose(history), args.reps)
            both = timed(lambda: nbtrain.diagnose(path), args.reps)
            size = f"{path.stat().st_size / 1e6:.1f} MB"
            cells = [f"{m:.3f} ({lo:.3f}-{hi:.3f})" for m, lo, hi, _ in (read, diag, both)]
            print(f"| {name} | {size} | {len(history.steps):,} | {len(history.epochs):,} | " + " | ".join(cells) + " |")
        codes = {name: list(nbtrain.diagnose(path).codes) for name, path in logs.items()}
        print(f"\nfindings: {codes}")


if __name__ == "__main__":
    main()
