"""Command line: ``nbtrain train``, ``demo``, ``diagnose`` and ``compare``.

``diagnose`` and ``compare`` take run folders or any log ``nbtrain.read_log`` reads.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .rounds.command import add_next_round_parser
from .training import presets
from .training.config import TrainConfig


class CommandError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


def _config_from_args(args: argparse.Namespace) -> TrainConfig:
    if args.preset and args.config:
        raise CommandError("give --preset or --config, not both")
    if args.config:
        config = TrainConfig.from_json(args.config)
    else:
        config = presets.get(args.preset or "round1")
    changes = {}
    for name in ("epochs", "seed", "lr", "grad_clip", "scheduler_patience", "batch_size", "grad_accum_steps",
                 "device", "precision"):
        value = getattr(args, name)
        if value is not None:
            changes[name] = value
    if args.no_clip:
        changes["grad_clip"] = None
    if args.compile:
        changes["compile"] = True
    return config.replace(**changes) if changes else config


def cmd_train(args: argparse.Namespace) -> int:
    from .training.trainer import train

    config = _config_from_args(args)
    out = Path(args.out) if args.out else Path("runs") / (config.name or "run")
    if (out / "history.json").exists() and not args.resume and not args.overwrite:
        raise CommandError(f"{out} already holds a run; pass --resume to continue it or --overwrite to replace it")
    resume = out if args.resume and (out / "checkpoint.pt").exists() else None
    print(f"training {config.label} -> {out}", flush=True)
    run = train(config, out=out, resume=resume, progress=args.progress)
    print(f"{run.status}: {len(run.history.epochs)} epochs, run folder {out}")
    if run.status == "diverged":
        print(run.message, file=sys.stderr)
        return 1
    return 0


def cmd_diagnose(args: argparse.Namespace) -> int:
    from .diagnosis.diagnostics import diagnose
    from .logs.loading import load_log

    if args.clip is not None and not 0 < args.clip < float("inf"):
        raise CommandError(f"--clip must be > 0, got {args.clip}")
    loaded = load_log(args.path, args.log_format)
    config = loaded.config
    if args.clip is not None:
        if config is not None:
            config = config.replace(grad_clip=args.clip)
        else:  # a log states only some settings: add the threshold to them
            meta_config = loaded.history.meta.get("config")
            loaded.history.meta["config"] = {**(meta_config if isinstance(meta_config, dict) else {}),
                                             "grad_clip": args.clip}
    tried = [_tried(p) for p in args.tried] if args.tried else None  # --tried: alternatives already measured
    diagnosis = diagnose(loaded.history, config, tried=tried)
    if args.format == "json":
        print(json.dumps(diagnosis.to_dict(), indent=2))
    else:
        print(diagnosis.to_markdown())
    return 0


def _diagnose_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--clip", type=float, help="the clip threshold the run used, when the log does not say")
    p.add_argument("--tried", nargs="+", metavar="RUN", help="alternatives already measured on the same problem "
                   "(run folders, logs or sweep folders): a suggestion they measured uses their result")


def _tried(path: str):
    """A ``--tried`` path: a sweep folder's table (``load_sweep``), else a run folder or log."""
    from .logs.loading import load_log
    from .sweeps.runner import SPEC_FILE, load_sweep

    return load_sweep(path) if (Path(path) / SPEC_FILE).is_file() else load_log(path)


def cmd_compare(args: argparse.Namespace) -> int:
    import pandas as pd

    from .logs.loading import load_log
    from .views.compare import compare_runs

    if len(args.paths) < 2:
        raise CommandError("compare needs at least two run folders or logs")
    png = None if args.no_png else Path(args.png)
    table = compare_runs([load_log(p, args.log_format) for p in args.paths], png=png)
    with pd.option_context("display.width", 200, "display.max_columns", 50):
        print(table.to_string(float_format=lambda v: f"{v:.4g}"))
    if png is not None:
        print(f"\ncomparison plot written to {png}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Train round 1 and round 2 from the same seed, diagnose both, write a summary (``nbtrain.demo``)."""
    from .demo.runner import run_demo

    configs = [presets.ROUND1, presets.ROUND2]
    changes = {k: getattr(args, k) for k in ("epochs", "seed", "device", "precision") if getattr(args, k) is not None}
    result = run_demo(args.out, [c.replace(**changes) for c in configs], progress=args.progress)
    return 0 if all(o.status == "completed" for o in result.outcomes) else 1


def _device_arguments(p: argparse.ArgumentParser) -> None:
    from .training.config import PRECISIONS

    p.add_argument("--device", help="auto (CUDA, then MPS, then the CPU), cpu, cuda, cuda:N or mps "
                   "(default: the config's, auto)")
    p.add_argument("--precision", choices=PRECISIONS,
                   help="32 (default), bf16-mixed (autocast) or 16-mixed (autocast and a loss scaler)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nbtrain", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a preset or a config file and write a run folder")
    p.add_argument("--preset", help=f"one of: {', '.join(presets.ALL)} (default round1)")
    p.add_argument("--config", help="a TrainConfig JSON file")
    p.add_argument("--out", help="run folder (default runs/<preset name>)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--grad-clip", dest="grad_clip", type=float)
    p.add_argument("--no-clip", action="store_true", help="switch gradient clipping off")
    p.add_argument("--patience", dest="scheduler_patience", type=int)
    p.add_argument("--batch-size", dest="batch_size", type=int)
    p.add_argument("--accum", dest="grad_accum_steps", type=int)
    p.add_argument("--compile", action="store_true", help="fast path: torch.compile the forward+loss, fused Adam")
    _device_arguments(p)
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run in --out")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=sys.stderr.isatty())
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: at batch 8 a second thread buys little and oversubscribes busy cores)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("demo", help="train round 1 and round 2, diagnose both, write a summary")
    p.add_argument("--out", default="runs")
    p.add_argument("--epochs", type=int, help="override the presets' 7 epochs")
    p.add_argument("--seed", type=int)
    _device_arguments(p)
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=sys.stderr.isatty())
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: at batch 8 a second thread buys little and oversubscribes busy cores)")
    p.set_defaults(func=cmd_demo)

    from .logs.reader import FORMATS

    log_formats = ("auto", *FORMATS)
    p = sub.add_parser("diagnose", help="print the diagnosis of a run folder or a log (Hugging Face, Lightning, ...)")
    p.add_argument("path", help="a run folder, or any log nbtrain.read_log reads (trainer_state.json, metrics.csv, "
                                "a Keras CSVLogger file, TensorBoard events, ... or a folder holding one)")
    p.add_argument("--format", choices=("markdown", "json"), default="markdown", help="the report's format")
    p.add_argument("--log-format", dest="log_format", choices=log_formats, default="auto",
                   help="the log's format (default: detected from the path)")
    _diagnose_options(p)  # --clip, --tried
    p.set_defaults(func=cmd_diagnose)

    p = sub.add_parser("compare", help="compare two or more run folders or logs side by side")
    p.add_argument("paths", nargs="+", help="run folders or logs (anything nbtrain.read_log reads)")
    p.add_argument("--log-format", dest="log_format", choices=log_formats, default="auto",
                   help="the logs' format (default: detected from each path)")
    p.add_argument("--png", default="comparison.png", help="where to write the comparison plot")
    p.add_argument("--no-png", action="store_true")
    p.set_defaults(func=cmd_compare)

    from .sweeps.command import add_sweep_parser

    add_sweep_parser(sub)
    add_next_round_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "threads", None) is not None:
        import torch

        torch.set_num_threads(args.threads)
    try:
        return args.func(args)
    except (CommandError, ValueError, TypeError, FileNotFoundError) as exc:
        print(f"nbtrain {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:  # an optional library a log needs: the message says what to install
        if "pip install" not in str(exc):
            raise
        print(f"nbtrain {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"nbtrain {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
