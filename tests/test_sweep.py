import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import types
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from torch.utils.data import TensorDataset

from nbtrain import TrainConfig
from nbtrain.files import read_json
from nbtrain.sweeps.command import add_sweep_parser, load_sweep_spec, sweep_command
from nbtrain.sweeps.plan import callable_name, config_label, plan, trial_config
from nbtrain.sweeps.plots import sweep_curves, sweep_heatmap
from nbtrain.sweeps.runner import RESULTS_FILE, SPEC_FILE, load_sweep, sweep
from nbtrain.sweeps.trial import DONE_FILE, callables_of, read_done, resume_point, run_trial
from nbtrain.training.runfolder import CHECKPOINT_FILE, code_fingerprint

from ci import unavailable
from tasks import make_mlp, make_regression

BASE = TrainConfig(lr=1e-2, grad_clip=1.0, epochs=3, batch_size=16, scheduler_patience=0, name="tiny")
# two good learning rates, one that overflows (diverged) and one the config rejects (failed)
GRID = {"lr": [1e-2, 3e-2, 1e30, -1.0], "grad_clip": [0.5]}
SEEDS = [0, 1]
NEW_CODE = "0123456789abcdef"  # the fingerprint of some other version of nbtrain
NUMERIC = ["best_val_loss", "final_val_loss", "grad_norm_growth_p50", "grad_norm_growth_max", "clip_fraction",
           "final_lr", "best_epoch", "lr_cuts", "epochs_done"]


# -- picklable, top-level trial functions (the worker processes import them from this module) --
def tiny_model(seed):
    return make_mlp(seed=seed)


def tiny_data(seed):
    x, y = make_regression(96, seed=10 + seed)
    xv, yv = make_regression(32, seed=20 + seed)
    return TensorDataset(x, y), TensorDataset(xv, yv)


class CountingModel:
    """model_fn that appends the seed to a file each time a trial builds its model."""

    def __init__(self, log_path):
        self.log_path = str(log_path)

    def __call__(self, seed):
        with open(self.log_path, "a") as fh:
            fh.write(f"{seed}\n")
        return tiny_model(seed)


class GpuLoggingModel:
    """model_fn that appends ``seed gpu`` to a file: the GPU its worker was pinned to ("-": none)."""

    def __init__(self, log_path):
        self.log_path = str(log_path)

    def __call__(self, seed):
        with open(self.log_path, "a") as fh:
            fh.write(f"{seed} {os.environ.get('NBTRAIN_TEST_GPU', '-')}\n")
        return tiny_model(seed)


def dying_model(seed):
    """model_fn whose worker dies: SIGKILL on seed 1, a last word and exit code 3 on seed 2, SystemExit on 3."""
    if seed == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    if seed == 2:
        sys.stderr.write("dying_model: giving up on seed 2\n")
        sys.stderr.flush()
        os._exit(3)
    if seed == 3:
        raise SystemExit(4)
    return tiny_model(seed)


def fake_pin(index):
    """Stands for ``backends.pin_gpu`` on a machine without CUDA: remembers the slot's GPU."""
    os.environ["NBTRAIN_TEST_GPU"] = str(index)


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "grid"
    lines = []
    # the model_fn's qualified name is part of what a re-run checks before reusing a trial
    model_fn = CountingModel(out.parent / "calls.txt")
    table = sweep(BASE, GRID, SEEDS, out=out, max_workers=2, model_fn=model_fn, data_fn=tiny_data,
                  progress=False, sink=lines.append)
    return out, table, lines


def _same_numbers(a, b):
    pd.testing.assert_frame_equal(a[NUMERIC].reset_index(drop=True), b[NUMERIC].reset_index(drop=True),
                                  check_exact=True)


# -- planning ---------------------------------------------------------------------------
def test_plan_and_folder_names(tmp_path):
    grid = {"lr": [2e-5, 1e-5], "grad_clip": [2.0, 3.0], "scheduler_patience": [3, 5]}
    trials = plan(BASE, grid, [0, 1, 2], tmp_path)
    assert len(trials) == 8 * 3
    assert trials[0].run_dir == str(tmp_path / "lr=2e-05_clip=2.0_pat=3" / "seed=0")
    assert trials[-1].run_dir == str(tmp_path / "lr=1e-05_clip=3.0_pat=5" / "seed=2")
    assert config_label({"grad_clip": None, "batch_size": 16}) == "clip=None_bs=16"
    assert config_label({}) == "base"


def test_bad_sweep_arguments_raise(tmp_path):
    with pytest.raises(ValueError, match="grid key 'learning_rate' is not a TrainConfig field"):
        sweep(BASE, {"learning_rate": [1e-3]}, out=tmp_path)
    with pytest.raises(ValueError, match="grid must not contain 'seed'"):
        sweep(BASE, {"seed": [1, 2]}, out=tmp_path)
    with pytest.raises(ValueError, match=r"grid\['lr'\] is empty"):
        sweep(BASE, {"lr": []}, out=tmp_path)
    with pytest.raises(ValueError, match="seeds is empty"):
        sweep(BASE, {"lr": [1e-3]}, seeds=[], out=tmp_path)
    with pytest.raises(ValueError, match="seeds must be ints >= 0, got -1"):
        sweep(BASE, {"lr": [1e-3]}, seeds=[-1], out=tmp_path)
    with pytest.raises(ValueError, match="backend must be one of 'local', 'ray', got 'dask'"):
        sweep(BASE, {"lr": [1e-3]}, backend="dask", out=tmp_path)
    with pytest.raises(ValueError, match="max_workers must be a positive int or None, got 0"):
        sweep(BASE, {"lr": [1e-3]}, max_workers=0, out=tmp_path)
    with pytest.raises(TypeError, match="base_config must be a TrainConfig, got dict"):
        sweep({"lr": 1e-3}, {"lr": [1e-3]}, out=tmp_path)
    with pytest.raises(TypeError, match="model_fn .* is a lambda"):
        sweep(BASE, {"lr": [1e-3]}, out=tmp_path, model_fn=lambda s: tiny_model(s), data_fn=tiny_data)
    with pytest.raises(ValueError, match="data_fn was given without model_fn: give both"):
        sweep(BASE, {"lr": [1e-3]}, out=tmp_path, data_fn=tiny_data)
    with pytest.raises(ValueError, match="model_fn was given without data_fn: give both"):
        sweep(BASE, {"lr": [1e-3]}, out=tmp_path, model_fn=tiny_model)
    assert not any(tmp_path.iterdir())  # nothing was written


def test_notebook_functions_are_refused_by_the_local_backend(tmp_path, monkeypatch):
    def from_notebook(seed):
        return tiny_model(seed)

    from_notebook.__module__ = "__main__"
    from_notebook.__qualname__ = "from_notebook"
    main = types.ModuleType("__main__")  # an interactive session
    monkeypatch.setitem(sys.modules, "__main__", main)
    message = r"defined in this notebook, session or script \(__main__\).* backend='ray'"
    with pytest.raises(TypeError, match=message):
        sweep(BASE, {"lr": [1e-3]}, out=tmp_path, model_fn=from_notebook, data_fn=tiny_data)
    main.__file__ = str(tmp_path / "script.py")  # a script: its workers do not import it either
    with pytest.raises(TypeError, match=message):
        sweep(BASE, {"lr": [1e-3]}, out=tmp_path, model_fn=from_notebook, data_fn=tiny_data)


def test_missing_ray_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ImportError, match=r"pip install nbtrain\[ray\]"):
        sweep(BASE, {"lr": [1e-3]}, backend="ray", out=tmp_path, model_fn=tiny_model, data_fn=tiny_data)


# -- one trial, in this process ----------------------------------------------------------
def test_run_trial_in_process(tmp_path):
    good, bad = plan(BASE, {"lr": [1e-2, 0.0]}, [3], tmp_path)
    row = run_trial(good, tiny_model, tiny_data, single_thread=False)
    assert row["status"] == "completed" and row["error"] == ""
    assert row["lr"] == 1e-2 and row["seed"] == 3 and row["epochs_done"] == 3
    folder = Path(good.run_dir)
    assert {"config.json", "history.json", "checkpoint.pt", DONE_FILE} <= {p.name for p in folder.iterdir()}
    saved = TrainConfig.from_json(folder / "config.json")
    assert (saved.lr, saved.seed, saved.grad_clip) == (1e-2, 3, BASE.grad_clip)
    done = read_json(folder / DONE_FILE)
    assert done["row"]["best_val_loss"] == row["best_val_loss"]
    assert done["code"] == code_fingerprint()

    row = run_trial(bad, tiny_model, tiny_data, single_thread=False)
    assert row["status"] == "failed" and row["error"] == "lr must be > 0, got 0.0"


# -- the local backend -------------------------------------------------------------------
def test_local_sweep_table(local_sweep):
    out, table, lines = local_sweep
    assert list(table.columns[:3]) == ["lr", "grad_clip", "seed"]
    assert len(table) == len(GRID["lr"]) * len(SEEDS)
    assert table["lr"].tolist() == [1e-2, 1e-2, 3e-2, 3e-2, 1e30, 1e30, -1.0, -1.0]
    assert table["seed"].tolist() == SEEDS * 4
    by_lr = table.groupby("lr")["status"].agg(set).to_dict()
    assert by_lr == {1e-2: {"completed"}, 3e-2: {"completed"}, 1e30: {"diverged"}, -1.0: {"failed"}}

    good = table[table["status"] == "completed"]
    assert np.isfinite(good[["best_val_loss", "final_val_loss", "clip_fraction", "grad_norm_growth_p50"]]).all().all()
    assert (good["best_val_loss"] <= good["final_val_loss"]).all()
    assert (good["epochs_done"] == BASE.epochs).all()
    assert (good["error"] == "").all()
    assert (table.loc[table["status"] == "failed", "error"] == "lr must be > 0, got -1.0").all()
    assert table.loc[table["status"] == "diverged", "error"].str.contains("non-finite").all()
    # seeds differ, the same seed under another lr differs too
    assert good["best_val_loss"].nunique() == len(good)

    for run_dir in table["run_dir"]:
        assert (Path(run_dir) / DONE_FILE).is_file()
    assert Path(table["run_dir"][0]) == out / "lr=0.01_clip=0.5" / "seed=0"
    saved = pd.read_csv(out / RESULTS_FILE)
    assert saved["status"].tolist() == table["status"].tolist()
    _same_numbers(load_sweep(out), table)
    assert lines[0].startswith("sweep: 8 trials (4 grid points x 2 seeds)")
    assert lines[-1].startswith("sweep done: 4 completed, 2 diverged, 2 failed")


def test_a_trial_matches_a_plain_train_call(local_sweep, tmp_path):
    from nbtrain import History, train

    _, table, _ = local_sweep
    row = table.iloc[3]  # lr 3e-2, seed 1
    config = BASE.replace(lr=3e-2, grad_clip=0.5, seed=1)
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run = train(config, tiny_model(1), *tiny_data(1), sink=None)
    finally:
        torch.set_num_threads(threads)
    saved = History.load(Path(row["run_dir"]) / "history.json")
    assert [r["loss"] for r in saved.steps] == [r["loss"] for r in run.history.steps]
    assert row["best_val_loss"] == min(r["val_loss"] for r in run.history.epochs)


def test_rerun_only_retrains_trials_without_a_marker(local_sweep, tmp_path):
    src, first, _ = local_sweep
    out = tmp_path / "grid"
    shutil.copytree(src, out)
    first = first.assign(run_dir=[str(out / Path(p).relative_to(src)) for p in first["run_dir"]])
    # the marker is deleted, and the checkpoint too, so that trial really trains again
    target = Path(first["run_dir"][3])  # lr 3e-2, seed 1
    (target / DONE_FILE).unlink()
    (target / "checkpoint.pt").unlink()
    others = {p: (Path(p) / DONE_FILE).stat().st_mtime_ns for p in first["run_dir"] if Path(p) != target}
    log = tmp_path / "calls.txt"
    lines = []
    again = sweep(BASE, GRID, SEEDS, out=out, max_workers=2, model_fn=CountingModel(log), data_fn=tiny_data,
                  progress=False, sink=lines.append)
    assert log.read_text().split() == ["1"]  # one model built: the trial without a marker
    assert "7 already done, 1 to run" in lines[0]
    assert {p: (Path(p) / DONE_FILE).stat().st_mtime_ns for p in others} == others
    _same_numbers(again, first)
    assert again["status"].tolist() == first["status"].tolist()


def test_a_changed_base_config_is_not_reused(local_sweep, tmp_path):
    src, first, _ = local_sweep
    out = tmp_path / "grid"
    shutil.copytree(src, out)
    log = tmp_path / "calls.txt"
    grid = {"lr": [1e-2], "grad_clip": [0.5]}
    table = sweep(BASE.replace(epochs=2), grid, [0], out=out, max_workers=1, model_fn=CountingModel(log),
                  data_fn=tiny_data, progress=False, sink=None)
    assert log.read_text().split() == ["0"]
    assert table["epochs_done"].tolist() == [2]
    # nor a trial that another model_fn trained (the functions' qualified names are recorded)
    trial = plan(BASE.replace(epochs=2), grid, [0], out)[0]
    config = BASE.replace(epochs=2, lr=1e-2, grad_clip=0.5, seed=0, name=f"tiny lr=0.01_clip=0.5 seed=0").to_dict()
    fns = {"model_fn": callable_name(CountingModel(log)), "data_fn": callable_name(tiny_data)}
    assert fns == {"model_fn": "test_sweep.CountingModel", "data_fn": "test_sweep.tiny_data"}
    assert read_done(trial.run_dir, config, fns)["epochs_done"] == 2
    assert read_done(trial.run_dir, config, {**fns, "model_fn": "test_sweep.tiny_model"}) is None


def test_trials_of_other_code_are_trained_again(local_sweep, tmp_path, monkeypatch):
    src, first, _ = local_sweep
    out = tmp_path / "grid"
    shutil.copytree(src, out)
    spec = read_json(src / SPEC_FILE)
    assert spec["code"] == code_fingerprint() and spec["seeds"] == SEEDS
    # the code changes (a new nbtrain, an edited module): no trial the old code made is read back
    import nbtrain.sweeps.runner

    monkeypatch.setattr(nbtrain.sweeps.runner, "code_fingerprint", lambda: NEW_CODE)
    log = tmp_path / "calls.txt"
    lines = []
    again = sweep(BASE, GRID, SEEDS, out=out, max_workers=2, model_fn=CountingModel(log), data_fn=tiny_data,
                  progress=False, sink=lines.append)
    assert "0 already done, 8 to run" in lines[0]
    assert sorted(log.read_text().split()) == ["0", "0", "0", "1", "1", "1"]  # lr -1.0 builds no model
    _same_numbers(again, first)
    assert {read_json(Path(p) / DONE_FILE)["code"] for p in again["run_dir"]} == {NEW_CODE}
    # the same code again: every trial is read back
    lines.clear()
    sweep(BASE, GRID, SEEDS, out=out, max_workers=2, model_fn=CountingModel(log), data_fn=tiny_data,
          progress=False, sink=lines.append)
    assert "8 already done, 0 to run (nothing to train)" in lines[0]


def test_a_checkpoint_of_other_code_is_not_resumed(tmp_path, monkeypatch):
    import nbtrain.sweeps.trial
    import nbtrain.training.trainer

    (trial,) = plan(BASE, {"lr": [1e-2]}, [0], tmp_path)
    run_dir, config = Path(trial.run_dir), trial_config(trial).to_dict()
    fns = callables_of(tiny_model, tiny_data)
    resumed_from = []
    real_train = nbtrain.training.trainer.train

    def spy_train(*args, resume=None, **kw):
        resumed_from.append(resume)
        return real_train(*args, resume=resume, **kw)

    monkeypatch.setattr(nbtrain.training.trainer, "train", spy_train)
    first = run_trial(trial, tiny_model, tiny_data, single_thread=False)
    here = code_fingerprint()
    assert read_json(run_dir / DONE_FILE)["code"] == here
    assert read_done(run_dir, config, fns) == first
    assert read_done(run_dir, config, fns, code=NEW_CODE) is None
    assert resume_point(run_dir, config, here) == run_dir / CHECKPOINT_FILE  # the checkpoint says which code
    assert resume_point(run_dir, config, NEW_CODE) is None

    # other code finds the trial: it trains it from scratch, not from this code's checkpoint
    monkeypatch.setattr(nbtrain.sweeps.trial, "code_fingerprint", lambda: NEW_CODE)
    again = run_trial(trial, tiny_model, tiny_data, single_thread=False)
    assert resumed_from == [None, None]
    assert read_json(run_dir / DONE_FILE)["code"] == NEW_CODE
    assert {k: again[k] for k in NUMERIC} == {k: first[k] for k in NUMERIC}
    # a trial interrupted under the same code resumes from its checkpoint
    (run_dir / DONE_FILE).unlink()
    run_trial(trial, tiny_model, tiny_data, single_thread=False)
    assert resumed_from[-1] == run_dir / CHECKPOINT_FILE


# -- the local pool from any caller ---------------------------------------------------------------
# A script WITHOUT a main guard, its model and data functions in a module beside it: the workers
# must neither re-run the caller nor need its __main__ to be a file.
CALLER_SCRIPT = """
import json, sys
import nbtrain, trialfns
table = nbtrain.sweep(nbtrain.TrainConfig(lr=1e-2, grad_clip=1.0, epochs=2, batch_size=16, scheduler_patience=0),
                      {"lr": [1e-2, 3e-2]}, [0], out=OUT, max_workers=1, model_fn=trialfns.model,
                      data_fn=trialfns.data, progress=False, sink=None)
print("ROWS", json.dumps(table[["status", "error", "best_val_loss"]].to_dict("records")))
"""
TRIAL_FUNCTIONS = """
from torch.utils.data import TensorDataset
from tasks import make_mlp, make_regression

def model(seed):
    return make_mlp(seed=seed)

def data(seed):
    x, y = make_regression(64, seed=10 + seed)
    xv, yv = make_regression(16, seed=20 + seed)
    return TensorDataset(x, y), TensorDataset(xv, yv)
"""


@pytest.mark.parametrize("caller", ["stdin", "dash-c", "script", "ipython"])
def test_the_local_pool_runs_from_any_caller(caller, tmp_path):
    (tmp_path / "trialfns.py").write_text(TRIAL_FUNCTIONS)
    tests_dir = str(Path(__file__).parent)
    code = f"import sys; sys.path[:0] = [{str(tmp_path)!r}, {tests_dir!r}]; OUT = {str(tmp_path / 'grid')!r}\n"
    code += CALLER_SCRIPT
    stdin = None
    if caller == "stdin":
        command, stdin = [sys.executable, "-"], code
    elif caller == "dash-c":
        command = [sys.executable, "-c", code]
    elif caller == "script":
        (tmp_path / "no_main_guard.py").write_text(code)
        command = [sys.executable, str(tmp_path / "no_main_guard.py")]
    else:
        try:
            import IPython  # noqa: F401
        except ImportError as exc:
            unavailable(f"the IPython caller needs IPython (pip install -e '.[dev]'): {exc}")
        command = [sys.executable, "-m", "IPython", "--quick", "--no-banner", "--colors=NoColor", "-c", code]
    done = subprocess.run(command, input=stdin, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    (line,) = [ln for ln in done.stdout.splitlines() if ln.startswith("ROWS ")]
    rows = json.loads(line[5:])
    assert [r["status"] for r in rows] == ["completed", "completed"], rows
    # the numbers of the same trials run here, in this process
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"trialfns_{caller}", tmp_path / "trialfns.py")
    fns = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fns)
    for row, trial in zip(rows, plan(BASE.replace(epochs=2, name=""), {"lr": [1e-2, 3e-2]}, [0], tmp_path / "here")):
        assert row["best_val_loss"] == run_trial(trial, fns.model, fns.data, single_thread=False)["best_val_loss"]


def test_a_worker_that_dies_says_why_and_the_others_go_on(tmp_path):
    table = sweep(BASE, {"lr": [1e-2]}, [0, 1, 2, 3], out=tmp_path / "grid", max_workers=1, model_fn=dying_model,
                  data_fn=tiny_data, progress=False, sink=None)
    assert table["status"].tolist() == ["completed", "failed", "failed", "failed"]
    errors = table["error"].tolist()
    assert errors[0] == ""
    assert re.fullmatch(r"worker failed: the worker process \(pid \d+\) was killed by signal 9 \(SIGKILL\): out of "
                        r"memory, or killed from outside while running this task", errors[1]), errors[1]
    assert re.fullmatch(r"worker failed: the worker process \(pid \d+\) exited with code 3 while running this task; "
                        r"its last error output: dying_model: giving up on seed 2", errors[2]), errors[2]
    assert re.fullmatch(r"worker failed: SystemExit: 4 \(at test_sweep.py:\d+\)", errors[3]), errors[3]
    # nothing is recorded for the failed trials: the next call of the sweep tries them again
    assert [(Path(d) / DONE_FILE).is_file() for d in table["run_dir"]] == [True, False, False, False]


# -- GPUs: where each trial runs (CUDA's presence patched; no GPU needed) -----------------------
def _with_gpus(monkeypatch, n):
    from nbtrain.training import devices

    monkeypatch.setattr(devices, "cuda_count", lambda: n)


def test_without_a_gpu_the_local_plan_is_the_plain_pool(monkeypatch, tmp_path):
    from nbtrain.sweeps.placement import local_plan

    _with_gpus(monkeypatch, 0)
    trials = plan(BASE, {"lr": [1e-3, 2e-3, 3e-3]}, [0], tmp_path)
    p = local_plan(trials, None)
    assert (p.gpu_slots, p.gpu_trials, p.cpu_trials) == ([], [], [0, 1, 2])
    assert p.cpu_workers == min(os.cpu_count() or 1, 3)
    assert local_plan(trials, 2).cpu_workers == 2 and local_plan(trials, 8).cpu_workers == 3
    assert local_plan(trials, 2).describe() == "2 worker processes"


def test_local_plan_gives_one_worker_per_gpu_to_auto_and_cuda_trials(monkeypatch, tmp_path):
    from nbtrain.sweeps.placement import local_plan

    _with_gpus(monkeypatch, 2)
    for device in ("auto", "cuda"):
        trials = plan(BASE.replace(device=device), {"lr": [1e-3, 2e-3, 3e-3]}, [0, 1], tmp_path)
        p = local_plan(trials, None)
        assert p.gpu_slots == [0, 1] and p.gpu_trials == list(range(6))
        assert (p.cpu_trials, p.cpu_workers) == ([], 0)
        assert p.describe() == "one worker per GPU on cuda:0, cuda:1"
    assert local_plan(trials, 4).gpu_slots == [0, 1, 0, 1]  # max_workers: more than one per GPU
    assert local_plan(trials, 1).gpu_slots == [0]
    assert local_plan(trials[:1], None).gpu_slots == [0]  # never more slots than trials
    assert local_plan(trials, 4).describe() == "4 workers on cuda:0, cuda:1"
    for device in ("cpu", "cuda:1", "mps"):  # not spread: the user chose the device
        p = local_plan(plan(BASE.replace(device=device), {"lr": [1e-3, 2e-3]}, [0], tmp_path), 3)
        assert (p.gpu_slots, p.cpu_trials, p.cpu_workers) == ([], [0, 1], 2)


def test_local_plan_with_a_device_axis(monkeypatch, tmp_path):
    from nbtrain.sweeps.placement import local_plan, trial_device

    _with_gpus(monkeypatch, 2)
    trials = plan(BASE, {"device": ["auto", "cpu"]}, [0, 1, 2], tmp_path)
    assert [trial_device(t) for t in trials] == ["auto"] * 3 + ["cpu"] * 3
    p = local_plan(trials, 3)
    assert (p.gpu_trials, p.gpu_slots) == ([0, 1, 2], [0, 1, 0])
    assert (p.cpu_trials, p.cpu_workers) == ([3, 4, 5], 1)  # the other trials keep a worker
    assert p.describe() == "3 workers on cuda:0, cuda:1, 1 worker process for the other trials"


def test_ray_asks_for_a_gpu_per_trial_on_cuda(tmp_path):
    from nbtrain.sweeps.placement import ray_options

    trials = plan(BASE, {"device": ["auto", "cpu", "cuda", "cuda:0"]}, [0], tmp_path)
    cpu, gpu = {"num_cpus": 1}, {"num_cpus": 1, "num_gpus": 1}
    assert ray_options(trials[:2], 0) == [cpu, cpu]  # a cluster without GPUs: as before
    assert ray_options(trials, 4.0) == [gpu, cpu, gpu, gpu]
    with pytest.raises(ValueError, match="device 'cuda' but the Ray cluster has no GPU"):
        ray_options(trials[2:3], 0)
    with pytest.raises(ValueError, match="device 'cuda:1' cannot run on the Ray backend: .* sees as cuda:0"):
        ray_options(plan(BASE.replace(device="cuda:1"), {}, [0], tmp_path), 2)


class _Ref:
    """A fake Ray object reference (hashable, as Ray's are)."""

    def __init__(self, row):
        self.row = row


class FakeRay:
    """Just enough of Ray for ``run_ray``: records each task's options, returns a row at once."""

    def __init__(self, gpus):
        self.gpus, self.calls = gpus, []

    def is_initialized(self):
        return True

    def cluster_resources(self):
        return {"CPU": 4.0, "GPU": self.gpus} if self.gpus else {"CPU": 4.0}

    def put(self, value):
        return value

    def remote(self, fn):
        fake = self

        class Task:
            def options(self, **options):
                return types.SimpleNamespace(remote=lambda trial, *_: fake._call(trial, options))

        return Task()

    def _call(self, trial, options):
        self.calls.append((trial.params, options))
        return _Ref({"trial": trial.params})

    def wait(self, refs, num_returns):
        return refs[:num_returns], refs[num_returns:]

    def get(self, ref):
        return ref.row

    def cancel(self, ref):
        raise AssertionError("nothing to cancel")


def test_ray_backend_passes_the_gpu_request_to_each_task(tmp_path, monkeypatch):
    from nbtrain.sweeps import backends

    trials = plan(BASE, {"device": ["auto", "cpu"]}, [0], tmp_path)
    for gpus, first in ((2.0, {"num_cpus": 1, "num_gpus": 1}), (0, {"num_cpus": 1})):
        fake = FakeRay(gpus)
        monkeypatch.setattr(backends, "import_ray", lambda fake=fake: fake)
        rows = {}
        backends.run_ray(trials, None, None, None, rows.__setitem__)
        assert fake.calls == [({"device": "auto"}, first), ({"device": "cpu"}, {"num_cpus": 1})]
        assert rows == {0: {"trial": {"device": "auto"}}, 1: {"trial": {"device": "cpu"}}}


def test_local_backend_pins_each_gpu_worker_and_the_numbers_stay(monkeypatch, tmp_path, local_sweep):
    # Two "GPUs" in this process; the workers have none, so "auto" trains on the CPU there:
    # the trials on "auto" must land one per slot, pinned, and match the CPU trials' numbers.
    from nbtrain.sweeps import backends

    _with_gpus(monkeypatch, 2)
    monkeypatch.setattr(backends, "pin_gpu", fake_pin)
    log, lines = tmp_path / "gpus.txt", []
    grid = {"lr": [1e-2], "grad_clip": [0.5], "device": ["auto", "cpu"]}
    table = sweep(BASE, grid, SEEDS, out=tmp_path / "grid", model_fn=GpuLoggingModel(log), data_fn=tiny_data,
                  progress=False, sink=lines.append)
    assert "(local backend, one worker per GPU on cuda:0, cuda:1, 1 worker process for the other trials)" in lines[0]
    assert sorted(log.read_text().split("\n")[:-1]) == ["0 -", "0 0", "1 -", "1 1"]
    assert table["status"].tolist() == ["completed"] * 4
    _, local, _ = local_sweep
    expected = local[local["lr"] == 1e-2]
    for device in ("auto", "cpu"):
        _same_numbers(table[table["device"] == device], expected)
    configs = [read_json(Path(d) / DONE_FILE)["config"]["device"] for d in table["run_dir"]]
    assert configs == ["auto", "auto", "cpu", "cpu"]  # pinning leaves the trial's config as it is


# -- the Ray backend -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ray_cluster():
    try:
        import ray
    except ImportError as exc:
        unavailable(f"the Ray backend test needs Ray (pip install -e '.[ray]'): {exc}")
    # Ray's workers import this test module (and tasks.py) by name, like the local backend's
    tests_dir = str(Path(__file__).parent)
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (tests_dir, old) if p)
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    except Exception as exc:  # e.g. Ray's node start timed out on a loaded machine
        unavailable(f"Ray could not start a local cluster here: {type(exc).__name__}: {exc}")
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old
    yield ray
    ray.shutdown()


def test_ray_backend_gives_the_local_numbers(ray_cluster, local_sweep, tmp_path):
    _, local, _ = local_sweep
    table = sweep(BASE, GRID, SEEDS, backend="ray", out=tmp_path / "grid", model_fn=tiny_model,
                  data_fn=tiny_data, progress=False, sink=None)
    _same_numbers(table, local)
    assert table["status"].tolist() == local["status"].tolist()
    assert table["error"].tolist() == local["error"].tolist()


# -- plots -----------------------------------------------------------------------------------
def _synthetic_table():
    rows = []
    for lr in (1e-5, 2e-5):
        for clip in (2.0, 3.0):
            for pat in (3, 5):
                for seed in (0, 1, 2):
                    rows.append({"lr": lr, "grad_clip": clip, "scheduler_patience": pat, "seed": seed,
                                 "best_val_loss": 0.5 + lr * 1e4 + 0.01 * seed + (0.001 if pat == 5 else 0),
                                 "clip_fraction": 0.9 if clip == 2.0 else 0.6,
                                 "status": "completed", "run_dir": ""})
    rows[0]["best_val_loss"] = float("nan")
    rows[0]["status"] = "diverged"
    return pd.DataFrame(rows)


def test_heatmap_annotates_mean_and_spread():
    table = _synthetic_table()
    ax = sweep_heatmap(table, x="grad_clip", y="lr", metric="best_val_loss")
    assert isinstance(ax, matplotlib.axes.Axes)
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == 4
    # lr 2e-5, clip 3.0: 6 runs (3 seeds x 2 patiences): mean 0.7105, std over those values
    cell = table[(table.lr == 2e-5) & (table.grad_clip == 3.0)]["best_val_loss"]
    assert f"{cell.mean():.3g}\n± {cell.std(ddof=1):.3g}\nn=6" in texts
    assert "n=5" in "".join(texts)  # the diverged run is left out...
    assert "1 run(s) without a value left out" in ax.get_title()  # ...and counted
    assert "mean over seeds, scheduler_patience" in ax.get_title()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2", "3"]  # grid values as people write them

    import matplotlib.pyplot as plt

    fig, given = plt.subplots()
    ax2 = sweep_heatmap(table, x="grad_clip", y="lr", metric="clip_fraction", spread="minmax",
                        where={"scheduler_patience": 3}, ax=given)
    assert ax2 is given
    assert "[0.9, 0.9]\nn=3" in "".join(t.get_text() for t in ax2.texts)
    assert "scheduler_patience=3" in ax2.get_title()
    ax3 = sweep_heatmap(table, x="grad_clip", y="lr", where={"scheduler_patience": 3, "seed": 1})
    assert all(t.get_text().endswith("\nn=1") for t in ax3.texts)  # one run per cell: no spread
    plt.close("all")


def test_heatmap_bad_arguments():
    table = _synthetic_table()
    with pytest.raises(ValueError, match="table has no column\\(s\\) 'momentum'"):
        sweep_heatmap(table, x="momentum", y="lr")
    with pytest.raises(ValueError, match="spread must be one of 'std', 'minmax', got 'iqr'"):
        sweep_heatmap(table, x="grad_clip", y="lr", spread="iqr")
    with pytest.raises(ValueError, match="no rows of the table match"):
        sweep_heatmap(table, x="grad_clip", y="lr", where={"scheduler_patience": 4})
    with pytest.raises(TypeError, match="table must be a pandas DataFrame"):
        sweep_heatmap([1, 2], x="grad_clip", y="lr")


def test_small_multiples_from_the_run_folders(local_sweep):
    import matplotlib.pyplot as plt

    _, table, _ = local_sweep
    fig = sweep_curves(table)
    assert isinstance(fig, matplotlib.figure.Figure)
    axes = np.array(fig.axes).reshape(2, 4)
    assert axes[0][0].get_title() == "lr 1e-2\nclip 0.5"
    assert len(axes[0][0].lines) == 2  # one line per seed
    first = Path(table["run_dir"][0]) / "history.json"
    from nbtrain import History

    assert list(axes[0][0].lines[0].get_ydata()) == [r["val_loss"] for r in History.load(first).epochs]
    assert len(axes[0][3].lines) == 0  # the failed config has no history
    assert axes[1][0].get_yscale() == "log"
    plt.close(fig)


# -- command line ----------------------------------------------------------------------------
def test_sweep_file_and_command(tmp_path, monkeypatch, capsys):
    spec = {"base": {"preset": "round2", "epochs": 2}, "grid": {"lr": [1e-5, 5e-6]}, "seeds": [0, 1],
            "out": str(tmp_path / "out")}
    path = tmp_path / "grid.json"
    path.write_text(json.dumps(spec))
    loaded = load_sweep_spec(path)
    assert loaded["base"].name == "round2" and loaded["base"].epochs == 2 and loaded["base"].lr == 1e-5
    assert loaded["backend"] == "local" and loaded["seeds"] == [0, 1]

    parser = argparse.ArgumentParser(prog="nbtrain")
    add_sweep_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["sweep", str(path), "--epochs", "1", "--max-workers", "1", "--no-progress"])
    assert args.func is sweep_command

    calls = []

    def fake_sweep(base, grid, seeds, **kw):
        calls.append((base, grid, seeds, kw))
        rows = [{"lr": lr, "seed": s, "best_val_loss": 0.5, "status": "completed", "error": "",
                 "train_time_s": 1.0, "run_dir": "x"} for lr in grid["lr"] for s in seeds]
        return pd.DataFrame(rows)

    monkeypatch.setattr("nbtrain.sweeps.command.sweep", fake_sweep)  # the name sweep_command calls
    assert args.func(args) == 0
    base, grid, seeds, kw = calls[0]
    assert base.epochs == 1 and grid == {"lr": [1e-5, 5e-6]} and seeds == [0, 1]
    assert kw["max_workers"] == 1 and kw["backend"] == "local" and kw["out"] == str(tmp_path / "out")
    printed = capsys.readouterr().out
    assert "best_val_loss" in printed and "run_dir" not in printed


def test_sweep_file_errors(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"base": {}, "grid": {}, "seed": [0]}))
    with pytest.raises(ValueError, match="unknown key\\(s\\) seed"):
        load_sweep_spec(path)
    path.write_text(json.dumps({"base": {"preset": "round9"}}))
    with pytest.raises(ValueError, match="unknown preset 'round9'"):
        load_sweep_spec(path)
    path.write_text("{nope")
    with pytest.raises(ValueError, match="is not valid JSON"):
        load_sweep_spec(path)
    with pytest.raises(FileNotFoundError, match="no sweep file at"):
        load_sweep_spec(tmp_path / "missing.json")
