"""Steps per second: a bare PyTorch loop vs nbtrain (instrumented, eager and compiled) vs Lightning.

    python benchmarks/bench_trainer.py [--reps 5] [--train-windows 2000] [--batch-sizes 8 32]

Every contender does the same math on the reference model and data: forward, MSE, backward,
clip_grad_norm_, Adam step, validation and a ReduceLROnPlateau step each epoch. The bare loop
and Lightning use PyTorch's default Adam (what a person writes by hand); nbtrain runs Adam's
fused kernel by default (``TrainConfig.fused_adam``), and its ``fused_adam=False`` contender
is the same trainer on PyTorch's default Adam. Each is built once and warmed up (compilation
happens there and is reported separately); then the contenders run one epoch each, in
alternating order, `--reps` times, and the median steps/s is reported with its ratio to the
bare loop. The table replaces its own section of benchmarks/RESULTS.md (``write_section``).
Wall time on a shared machine is noisy: read ratios, not absolute numbers, and only within
one run of this script.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import TensorDataset

import nbtrain
from nbtrain.reference.data import make_reference_data
from nbtrain.reference.models import ReferenceModel

HERE = Path(__file__).resolve().parent


class Bare:
    """The loop a person would write by hand (on ``device``), with nothing recorded and no per-step sync."""

    name = "bare loop"

    def __init__(self, config, train, val, device="cpu"):
        torch.manual_seed(config.seed)
        self.device = torch.device(device)
        self.model = ReferenceModel().to(self.device)
        self.x, self.y = (t.to(self.device) for t in train.tensors)
        self.xv, self.yv = (t.to(self.device) for t in val.tensors)
        self.b, self.clip, self.seed = config.batch_size, config.grad_clip, config.seed
        self.opt = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        self.sched = torch.optim.lr_scheduler.ReduceLROnPlateau(self.opt, patience=config.scheduler_patience)
        self.loss_fn = torch.nn.MSELoss()
        self.epoch = 0

    def run_epoch(self) -> int:
        g = torch.Generator(device=self.device).manual_seed(self.seed * 100003 + self.epoch)
        perm = torch.randperm(len(self.x), generator=g, device=self.device)
        x, y = self.x[perm], self.y[perm]
        self.model.train()
        steps = 0
        for i in range(0, len(x), self.b):
            self.opt.zero_grad(set_to_none=True)
            loss = self.loss_fn(self.model(x[i : i + self.b]), y[i : i + self.b])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip, foreach=True)
            self.opt.step()
            steps += 1
        self.model.eval()
        with torch.no_grad():
            val = float(self.loss_fn(self.model(self.xv), self.yv))
        self.sched.step(val)
        self.epoch += 1
        return steps


class NbTrain:
    """nbtrain's trainer (eager or compiled, on ``device``), timed one epoch at a time.

    ``fused_adam``: the config's Adam kernel (None: the default, fused).
    """

    def __init__(self, config, train, val, compile_: bool, device: str = "cpu", fused_adam: bool | None = None):
        self.name = "nbtrain compiled" if compile_ else "nbtrain (full instrumentation)"
        changes = {"compile": compile_, "device": device}
        if fused_adam is not None:
            changes["fused_adam"] = fused_adam
            self.name += "" if fused_adam else ", fused_adam=False"
        torch.manual_seed(config.seed)
        model = ReferenceModel()
        self.trainer = nbtrain.Trainer(config.replace(**changes), model, train, val, sink=None)
        self.epochs = 0

    def run_epoch(self) -> int:
        before = len(self.trainer.history.steps)
        self.epochs += 1
        self.trainer.fit(epochs=self.epochs)
        return len(self.trainer.history.steps) - before


class Lightning:
    name = "Lightning"

    def __init__(self, config, train, val):
        import logging
        import warnings

        import lightning as L

        # One Trainer per timed epoch: keep its banners and tips out of the table.
        for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
            logging.getLogger(name).setLevel(logging.ERROR)
        warnings.filterwarnings("ignore", module="lightning")

        class Module(L.LightningModule):
            def __init__(self):
                super().__init__()
                torch.manual_seed(config.seed)
                self.model = ReferenceModel()
                self.loss_fn = torch.nn.MSELoss()

            def training_step(self, batch, _):
                x, y = batch
                return self.loss_fn(self.model(x), y)

            def validation_step(self, batch, _):
                x, y = batch
                self.log("val_loss", self.loss_fn(self.model(x), y))

            def configure_optimizers(self):
                opt = torch.optim.Adam(self.parameters(), lr=config.lr)
                sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=config.scheduler_patience)
                return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "val_loss"}}

        self.L = L
        self.module = Module()
        self.train_loader = torch.utils.data.DataLoader(train, batch_size=config.batch_size, shuffle=True)
        self.val_loader = torch.utils.data.DataLoader(val, batch_size=len(val))
        self.clip = config.grad_clip
        self.epochs = 0

    def run_epoch(self) -> int:
        self.epochs += 1
        trainer = self.L.Trainer(
            max_epochs=1, gradient_clip_val=self.clip, gradient_clip_algorithm="norm", accelerator="cpu",
            logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
            num_sanity_val_steps=0,
        )
        trainer.fit(self.module, self.train_loader, self.val_loader)
        return len(self.train_loader)


def bench(batch_size: int, reps: int, n_train: int, with_compile: bool) -> list[dict]:
    data = make_reference_data(0)
    x, y = data.train.tensors
    train = TensorDataset(x[:n_train], y[:n_train])
    config = nbtrain.presets.ROUND1.replace(batch_size=batch_size)
    makers = [
        lambda: Bare(config, train, data.val),
        lambda: NbTrain(config, train, data.val, compile_=False, fused_adam=False),
        lambda: NbTrain(config, train, data.val, compile_=False),
    ]
    if with_compile:
        makers.append(lambda: NbTrain(config, train, data.val, compile_=True))
    try:
        import lightning  # noqa: F401

        makers.append(lambda: Lightning(config, train, data.val))
    except ImportError:
        print("Lightning is not installed: skipped (pip install lightning to include it)")
    contenders, warmup = [], {}
    for make in makers:
        c = make()
        t0 = time.perf_counter()
        c.run_epoch()  # warm-up; compiles for the compiled path
        warmup[c.name] = time.perf_counter() - t0
        contenders.append(c)
    rates: dict[str, list[float]] = {c.name: [] for c in contenders}
    cpu: dict[str, list[float]] = {c.name: [] for c in contenders}  # CPU ms per step
    for rep in range(reps):
        order = contenders if rep % 2 == 0 else contenders[::-1]
        for c in order:
            t0, c0 = time.perf_counter(), time.process_time()
            steps = c.run_epoch()
            rates[c.name].append(steps / (time.perf_counter() - t0))
            cpu[c.name].append((time.process_time() - c0) / steps * 1e3)
    base, base_cpu = statistics.median(rates["bare loop"]), statistics.median(cpu["bare loop"])
    rows = []
    for c in contenders:
        med, med_cpu = statistics.median(rates[c.name]), statistics.median(cpu[c.name])
        rows.append(
            {
                "batch": batch_size,
                "contender": c.name,
                "steps/s (median)": med,
                "min-max": f"{min(rates[c.name]):.0f}-{max(rates[c.name]):.0f}",
                "ratio to bare": med / base,
                "CPU ms/step": med_cpu,
                "CPU ratio": base_cpu / med_cpu,
                "warm-up s": warmup[c.name],
            }
        )
    return rows


def write_section(path: Path, heading: str, text: str) -> None:
    """Put ``text`` (which starts with the line ``heading``) in place of ``path``'s section under
    ``heading``, or at the end when there is none; other sections stay as they are.

    A section runs from its top-level heading (a line starting with "# ", outside fenced code)
    to the next one.
    """
    lines = path.read_text().splitlines() if path.exists() else []
    starts, fenced = [], False
    for i, line in enumerate(lines):
        fenced = fenced != line.startswith("```")
        if not fenced and line.startswith("# "):
            starts.append(i)
    new = text.rstrip("\n").splitlines()
    if heading in (lines[i] for i in starts):
        begin = next(i for i in starts if lines[i] == heading)
        end = next((i for i in starts if i > begin), len(lines))
        lines[begin:end] = new + ([""] if end < len(lines) else [])
    else:
        lines += ([""] if lines else []) + new
    path.write_text("\n".join(lines) + "\n")


def machine_line() -> str:
    """The machine and torch's threads, as the RESULTS.md tables state them."""
    return (f"{_cpu_name()}, {os.cpu_count()} cores, {platform.machine()}; {torch.get_num_threads()} torch threads; "
            f"{time.strftime('%Y-%m-%d %H:%M')}")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--train-windows", type=int, default=2000)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch CPU threads")
    parser.add_argument("--out", default=str(HERE / "RESULTS.md"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for b in args.batch_sizes:
        rows += bench(b, args.reps, args.train_windows, not args.no_compile)
    header = ("| batch | contender | steps/s (median) | min-max | ratio to bare | CPU ms/step (median) | "
              "CPU ratio to bare | warm-up s |\n|---|---|---|---|---|---|---|---|")
    lines = [
        f"| {r['batch']} | {r['contender']} | {r['steps/s (median)']:.0f} | {r['min-max']} | "
        f"{r['ratio to bare']:.3f} | {r['CPU ms/step']:.2f} | {r['CPU ratio']:.3f} | {r['warm-up s']:.1f} |"
        for r in rows
    ]
    table = "\n".join([header, *lines])
    print(table)
    command = "python benchmarks/bench_trainer.py " + " ".join(sys.argv[1:])
    try:
        import lightning

        lightning_version = f", lightning {lightning.__version__}"
    except ImportError:
        lightning_version = ", lightning not installed"
    text = (
        "# Trainer speed\n\n"
        f"Command: `{command.strip()}`  \n"
        f"Machine: {machine_line()}  \n"
        f"Versions: Python {platform.python_version()}, torch {torch.__version__}, nbtrain {nbtrain.__version__}"
        f"{lightning_version}  \n"
        f"Median of {args.reps} alternating repetitions of one epoch ({args.train_windows} training windows) "
        "after a warm-up epoch; warm-up includes compilation (shorter when inductor's on-disk cache is warm). "
        "Steps/s is wall time; CPU ms/step is the process's CPU time per step, steadier on a shared machine "
        "(a ratio above 1: faster than the bare loop).\n\n" + table + "\n"
    )
    write_section(Path(args.out), "# Trainer speed", text)
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
