"""train_many: independent reference runs side by side, identical to running them one after another."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

import nbtrain
from nbtrain import TrainConfig, presets, train
from nbtrain.sweeps.many import run_folder, slug, train_many

# Two short runs of the reference experiment (16 optimizer steps per epoch), one unnamed.
BASE = presets.ROUND1.replace(epochs=2, batch_size=256)
CONFIGS = {
    "round 1, short": BASE.replace(name=""),
    "higher lr": BASE.replace(lr=1e-4, name="lr_1e-4"),
}
FOLDERS = {"round 1, short": "round_1_short", "higher lr": "lr_1e-4"}


def _epochs(run):
    """Epoch rows without their wall time (which measures the machine, not the training)."""
    return [{k: v for k, v in row.items() if k != "epoch_time_s"} for row in run.history.epochs]


def _assert_same_run(a, b):
    assert a.config == b.config
    assert a.status == b.status
    assert a.history.steps == b.history.steps  # every step's loss, pre-clip norm, clip flag and LR
    assert _epochs(a) == _epochs(b)
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert list(sa) == list(sb)
    for name in sa:
        assert torch.equal(sa[name], sb[name]), name


@pytest.fixture(scope="module")
def many(tmp_path_factory):
    out = tmp_path_factory.mktemp("many")
    lines = []
    runs = train_many(CONFIGS, out, max_workers=2, sink=lines.append)
    return out, runs, lines


@pytest.fixture(scope="module")
def one_after_another(tmp_path_factory):
    """The same configs trained here, one after another, as the notebooks do (on one torch thread)."""
    out = tmp_path_factory.mktemp("sequential")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return {label: train(cfg, out=out / FOLDERS[label], reuse=True, sink=None) for label, cfg in CONFIGS.items()}
    finally:
        torch.set_num_threads(threads)


def test_results_are_those_of_train_one_after_another(many, one_after_another):
    out, runs, lines = many
    assert list(runs) == list(CONFIGS)
    for label, run in runs.items():
        assert isinstance(run, nbtrain.Run)
        assert run.out_dir == out / FOLDERS[label]
        _assert_same_run(run, one_after_another[label])
        assert run.history.meta["config"] == CONFIGS[label].to_dict()
    assert lines[0] == f"train_many: 2 runs in {out}; 0 reused, 2 to train (local backend, 2 worker processes)"
    # each run's log lines come back prefixed with its label
    assert sum(line.startswith("higher lr: epoch ") for line in lines) == BASE.epochs


def test_finished_runs_are_reused_and_load_like_train(many, one_after_another, tmp_path):
    src, first, _ = many
    out = tmp_path / "runs"
    shutil.copytree(src, out)
    lines = []
    again = train_many(CONFIGS, out, sink=lines.append)
    assert lines == [f"train_many: 2 runs in {out}; 2 reused, 0 to train (nothing to train)"]
    for label, run in again.items():
        assert run.message == f"loaded from {out / FOLDERS[label]}"
        _assert_same_run(run, one_after_another[label])
        loaded = train(CONFIGS[label], out=out / FOLDERS[label], reuse=True, sink=None)
        _assert_same_run(run, loaded)

    # one changed config trains again (in a worker); the other is still read back
    changed = {**CONFIGS, "higher lr": CONFIGS["higher lr"].replace(lr=2e-4)}
    lines.clear()
    third = train_many(changed, out, sink=lines.append)
    assert lines[0] == f"train_many: 2 runs in {out}; 1 reused, 1 to train (local backend, 1 worker process)"
    assert third["round 1, short"].message.startswith("loaded from")
    assert third["higher lr"].message == "" and third["higher lr"].config.lr == 2e-4
    assert third["higher lr"].history.steps != first["higher lr"].history.steps


def test_a_run_that_fails_in_its_worker_is_named_and_the_others_are_kept(tmp_path):
    configs = {"good": BASE.replace(epochs=1, name="good"),
               "no such gpu": BASE.replace(epochs=1, name="gpu99", device="cuda:99")}
    with pytest.raises(RuntimeError, match=r"1 of 2 runs did not finish .*'no such gpu': ValueError: device "
                                           r"'cuda:99' is not available here"):
        train_many(configs, tmp_path, max_workers=2)
    from nbtrain.sweeps.many import _reusable

    assert _reusable(configs["good"], tmp_path / "good")  # the run that finished is saved: a re-call reuses it
    # ... unless reuse=False, which trains it again
    lines = []
    again = train_many({"good": configs["good"]}, tmp_path, reuse=False, sink=lines.append)
    assert "0 reused, 1 to train" in lines[0] and again["good"].message == ""


def test_folders_and_bad_arguments(tmp_path):
    assert slug("only lr 1e-5") == "only_lr_1e-5"
    assert slug("round 2 (all three)") == "round_2_all_three"
    assert run_folder(tmp_path, "only lr 1e-5", BASE) == tmp_path / "round1"  # the config's name first
    assert run_folder(tmp_path, "only lr 1e-5", BASE.replace(name="")) == tmp_path / "only_lr_1e-5"
    with pytest.raises(ValueError, match=r"configs\['\?\?'\] has no name"):
        train_many({"??": BASE.replace(name="")}, tmp_path)
    with pytest.raises(ValueError, match=r"configs\['a'\] and configs\['b'\] differ but would share the run folder"):
        train_many({"a": BASE, "b": BASE.replace(lr=1e-4)}, tmp_path)
    with pytest.raises(TypeError, match="configs must be a mapping of label -> TrainConfig, got list"):
        train_many([BASE], tmp_path)
    with pytest.raises(TypeError, match=r"configs\['a'\] must be a TrainConfig, got dict"):
        train_many({"a": {"lr": 1e-3}}, tmp_path)
    with pytest.raises(ValueError, match="configs' labels must be str, got 1"):
        train_many({1: BASE}, tmp_path)
    with pytest.raises(ValueError, match="backend must be one of 'local', 'ray', got 'dask'"):
        train_many({"a": BASE}, tmp_path, backend="dask")
    with pytest.raises(ValueError, match="max_workers must be a positive int or None, got 0"):
        train_many({"a": BASE}, tmp_path, max_workers=0)
    assert train_many({}, tmp_path) == {}
    assert not any(tmp_path.iterdir())  # nothing was written


def test_two_labels_of_one_config_share_its_run(many, tmp_path):
    src, first, _ = many
    shutil.copytree(src, tmp_path / "runs")
    cfg = CONFIGS["higher lr"]
    runs = train_many({"x": cfg, "y": TrainConfig.from_dict(cfg.to_dict())}, tmp_path / "runs")
    assert runs["x"] is runs["y"]
    assert Path(runs["x"].out_dir).name == "lr_1e-4"
