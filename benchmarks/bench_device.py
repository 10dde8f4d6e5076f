"""Devices and precisions: the reference experiment's records on an accelerator against the CPU's,
steps per second against a bare loop on the same device, and host syncs per optimizer step.

    python benchmarks/bench_device.py [--epochs N] [--quick] [--reps 3] [--device auto] [--out FILE]

1. Records. The reference experiment (round 1, ``--epochs`` epochs: by default 7 with an
   accelerator, 1 without; ``--quick``: 1) on the CPU
   in "32" is the reference. Then, on the accelerator (CUDA, else MPS), "32", "bf16-mixed" and
   "16-mixed"; without one, the CPU's "bf16-mixed" and "16-mixed". Each run is compared with the
   reference: the relative difference of the final validation loss, the largest relative
   difference of an epoch's validation loss, the steps the loss scaler skipped. Tolerance on the
   final validation loss (``TOLERANCE``): 2% in "32" (the same math, other rounding, compounded
   over thousands of steps and through the plateau scheduler's decisions), 5% in "16-mixed"
   (a 10-bit mantissa in the forward), 10% in "bf16-mixed" (a 7-bit mantissa).
2. Speed (accelerator only). A bare loop on the device (data on the device, permuted there,
   forward, MSE, backward, clip_grad_norm_, Adam; nothing recorded, no sync per step) against
   nbtrain eager and nbtrain compiled (on CUDA: CUDA graphs, ``mode="reduce-overhead"``), each
   built once and warmed up (compilation is reported apart), then one epoch each in alternating
   order, ``--reps`` times; the median steps/s and its ratio to the bare loop. The compiled and
   eager runs start from the same weights and data: their step losses are compared too.
3. Host syncs (CUDA only): one epoch of each precision under ``torch.cuda.set_sync_debug_mode("warn")``,
   every synchronizing call counted (``warnings.simplefilter("always")``), per optimizer step
   after taking away the epoch's validation read. nbtrain's rule is one per step.

Without an accelerator it says so and runs the CPU precisions only. ``--device cpu`` runs the
speed section on the CPU too (a check of this script; the sync count needs CUDA).
Wall time on a shared machine is noisy: read the ratios within one run.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch
from torch.utils.data import TensorDataset

import nbtrain
from nbtrain.reference.data import make_reference_data
from nbtrain.reference.models import ReferenceModel
from nbtrain.training.devices import cuda_count, mps_available

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_trainer import Bare, NbTrain  # noqa: E402  (the same contenders, on the device)

PRECISIONS = ("32", "bf16-mixed", "16-mixed")
TOLERANCE = {"32": 0.02, "bf16-mixed": 0.10, "16-mixed": 0.05}  # relative, on the final validation loss


def accelerator(spec: str) -> str | None:
    """The device the accelerator sections run on (None: there is none)."""
    if spec != "auto":
        return spec
    if cuda_count():
        return "cuda"
    return "mps" if mps_available() else None


# -- 1. records -------------------------------------------------------------------------------------
def run_reference(config, device: str, precision: str) -> dict:
    t0 = time.perf_counter()
    run = nbtrain.train(config.replace(device=device, precision=precision), sink=None)
    seconds = time.perf_counter() - t0
    steps = run.history.steps
    return {
        "device": run.history.meta["device"],
        "precision": precision,
        "status": run.status,
        "val": [r["val_loss"] for r in run.history.epochs],
        "skipped": sum(1 for r in steps if r.get("skipped")),
        "steps/s": len(steps) / seconds,
    }


def compare_records(reference: dict, rows: list[dict]) -> list[str]:
    lines = ["| device | precision | status | final val loss | rel. diff (final) | max rel. diff (any epoch) | "
             "tolerance | within | skipped steps | steps/s |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in [reference, *rows]:
        n = min(len(r["val"]), len(reference["val"]))
        diffs = [abs(a - b) / abs(b) for a, b in zip(r["val"][:n], reference["val"][:n])]
        final = diffs[-1] if diffs else float("nan")
        tol = TOLERANCE[r["precision"]]
        within = "reference" if r is reference else ("yes" if final <= tol and r["status"] == "completed" else "NO")
        lines.append(f"| {r['device']} | {r['precision']} | {r['status']} | {r['val'][-1]:.5f} | {final:.3%} | "
                     f"{max(diffs, default=float('nan')):.3%} | {tol:.0%} | {within} | {r['skipped']} | "
                     f"{r['steps/s']:.0f} |")
    return lines


# -- 2. speed ----------------------------------------------------------------------------------------
def _synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    elif device == "mps":
        torch.mps.synchronize()


def speed(config, train, val, device: str, reps: int) -> list[str]:
    contenders, warmup = [], {}
    for make in (lambda: Bare(config, train, val, device), lambda: NbTrain(config, train, val, False, device),
                 lambda: NbTrain(config, train, val, True, device)):
        c = make()
        t0 = time.perf_counter()
        c.run_epoch()  # warm-up; compiles (and records the CUDA graphs) for the compiled path
        _synchronize(device)
        warmup[c.name] = time.perf_counter() - t0
        contenders.append(c)
    rates: dict[str, list[float]] = {c.name: [] for c in contenders}
    for rep in range(reps):
        for c in contenders if rep % 2 == 0 else contenders[::-1]:
            _synchronize(device)
            t0 = time.perf_counter()
            steps = c.run_epoch()
            _synchronize(device)
            rates[c.name].append(steps / (time.perf_counter() - t0))
    base = statistics.median(rates["bare loop"])
    lines = ["| contender | steps/s (median) | min-max | ratio to bare | warm-up s |", "|---|---|---|---|---|"]
    for c in contenders:
        med = statistics.median(rates[c.name])
        lines.append(f"| {c.name} | {med:.0f} | {min(rates[c.name]):.0f}-{max(rates[c.name]):.0f} | "
                     f"{med / base:.3f} | {warmup[c.name]:.1f} |")
    eager, compiled = (c.trainer for c in contenders[1:])
    lines.append("")
    lines.append(f"nbtrain compiled: {compiled.compile_info}")
    diffs = [abs(a["loss"] - b["loss"]) / max(abs(b["loss"]), 1e-12)
             for a, b in zip(compiled.history.steps, eager.history.steps)]
    lines.append(f"compiled vs eager, same weights and data: {len(diffs)} steps, largest relative difference of a "
                 f"step loss {max(diffs, default=float('nan')):.2e}, median {statistics.median(diffs):.2e}")
    return lines


# -- 3. host syncs -------------------------------------------------------------------------------------
def syncs_per_step(config, train, val, device: str, precision: str) -> tuple[int, int, float]:
    """``(synchronizing calls, optimizer steps, syncs per step)`` over one epoch (the validation read taken away)."""
    trainer = nbtrain.Trainer(config.replace(device=device, precision=precision), ReferenceModel(), train, val,
                              sink=None)
    trainer.fit(epochs=1)  # warm-up: allocations, cuBLAS handles, lazy initialisation
    torch.cuda.synchronize()
    before = len(trainer.history.steps)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            trainer.fit(epochs=2)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = sum(1 for w in caught if "synchroniz" in str(w.message).lower())
    steps = len(trainer.history.steps) - before
    return syncs, steps, (syncs - 1) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, help="default 7 with an accelerator, 1 without")
    parser.add_argument("--quick", action="store_true", help="1 epoch")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--train-windows", type=int, default=2000, help="training windows per timed epoch")
    parser.add_argument("--device", default="auto", help="the accelerator: auto (CUDA, else MPS), cuda:N, mps, cpu")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch CPU threads")
    parser.add_argument("--out", help="also write the report to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = accelerator(args.device)
    epochs = 1 if args.quick else args.epochs or (7 if device else 1)
    config = nbtrain.presets.ROUND1.replace(epochs=epochs)
    gpu = torch.cuda.get_device_name() if device and device.startswith("cuda") else device or "none"
    report = [
        "# Devices and precisions",
        "",
        f"Command: `python benchmarks/bench_device.py {' '.join(sys.argv[1:])}`  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads; "
        f"accelerator: {gpu}; {time.strftime('%Y-%m-%d %H:%M')}  ",
        f"Versions: Python {platform.python_version()}, torch {torch.__version__}, nbtrain {nbtrain.__version__}",
        "",
    ]
    if device is None:
        report.append("No CUDA or MPS device on this machine: the CPU precisions only (no speed or sync section).")
        report.append("")
    print("\n".join(report), flush=True)
    reference = run_reference(config, "cpu", "32")
    others = [run_reference(config, device, p) for p in PRECISIONS] if device else [
        run_reference(config, "cpu", p) for p in PRECISIONS[1:]]
    section = [f"## Records: the reference experiment, {epochs} epoch(s), against the CPU in \"32\"", "",
               *compare_records(reference, others), ""]
    print("\n".join(section), flush=True)
    report += section
    if device is not None:
        data = make_reference_data(0)
        x, y = data.train.tensors
        train = TensorDataset(x[: args.train_windows], y[: args.train_windows])
        section = [f"## Speed on {device}: batch {config.batch_size}, {args.train_windows} training windows per epoch, "
                   f"median of {args.reps}", "", *speed(config, train, data.val, device, args.reps), ""]
        print("\n".join(section), flush=True)
        report += section
        if device.startswith("cuda"):
            section = ["## Host syncs per optimizer step (torch.cuda.set_sync_debug_mode)", "",
                       "| precision | synchronizing calls | steps | per step (validation read taken away) |",
                       "|---|---|---|---|"]
            for p in PRECISIONS:
                syncs, steps, per = syncs_per_step(config, train, data.val, device, p)
                section.append(f"| {p} | {syncs} | {steps} | {per:.3f} |")
            print("\n".join(section), flush=True)
            report += section
    if args.out:
        Path(args.out).write_text("\n".join(report) + "\n")
        print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
