"""nbtrain.next_round: the rulebook, the paired decision rule, the budget, the report, the CLI.

The real loops train a tiny MLP (tests/tasks.py) on the sweep's local backend: the worker
processes import ``tiny_model`` and ``tiny_data`` from this module by name.
"""

from __future__ import annotations

import re

import pytest
import torch
from torch.utils.data import TensorDataset

import nbtrain
from nbtrain.cli import main
from nbtrain.diagnosis.findings import (
    GRADIENT_GROWTH,
    GRADIENT_SPIKES,
    HEAVY_CLIPPING,
    Diagnosis,
    Finding,
)
from nbtrain.rounds import rulebook
from nbtrain.rounds.budget import Budget
from nbtrain.rounds.candidates import REJECTED, STATUSES, UNTESTED, VERIFIED, Comparison, SeedResult
from nbtrain.rounds.command import parse_budget, parse_seeds
from nbtrain.rounds.evidence import Evidence
from nbtrain.rounds.candidates import Candidate
from nbtrain.rounds.report import SECTIONS
from nbtrain.rounds.trials import Runner
from nbtrain.rounds.verify import verify
from tasks import make_mlp, make_regression

# lr 0.3 with clip 1.0 is too much for this task: heavy clipping, a stalled validation loss, no LR cut
UNSTABLE = nbtrain.TrainConfig(lr=0.3, grad_clip=1.0, epochs=4, batch_size=8, scheduler_patience=5, seed=1,
                               name="round1")


# -- picklable, top-level functions (the local backend's workers import them from this module) --
def tiny_model(seed):
    return make_mlp(seed=seed)


def tiny_data(seed):
    x, y = make_regression(96, seed=10)
    xv, yv = make_regression(32, seed=20)
    return TensorDataset(x, y), TensorDataset(xv, yv)


@pytest.fixture(scope="module")
def unstable_round(tmp_path_factory):
    """One real round on the tiny task: the input run, the round, its out folder and its progress lines."""
    torch.set_num_threads(1)
    train_data, val_data = tiny_data(0)
    run = nbtrain.train(UNSTABLE, tiny_model(UNSTABLE.seed), train_data, val_data, sink=None)
    out = tmp_path_factory.mktemp("round")
    lines: list[str] = []
    rnd = nbtrain.next_round(run, seeds=(0, 1), budget_s=600, out=out, model_factory=tiny_model,
                             train_data=train_data, val_data=val_data, max_workers=2, sink=lines.append)
    return run, rnd, out, lines


# -- the paired decision rule ---------------------------------------------------------------------
def _comparison(pairs, statuses=None, complete=True):
    statuses = statuses or ["completed"] * len(pairs)
    return Comparison(3, tuple(SeedResult(i, b, c, s) for i, ((b, c), s) in enumerate(zip(pairs, statuses))),
                      complete)


def test_a_change_must_win_on_most_seeds():
    one_of_three = _comparison([(1.0, 0.5), (1.0, 1.1), (1.0, 1.2)])
    assert one_of_three.wins == 1 and not one_of_three.improvement  # a big win on one seed is not enough
    two_of_three = _comparison([(1.0, 0.9), (1.0, 0.95), (1.0, 1.5)])
    assert two_of_three.wins == 2 and two_of_three.improvement
    assert two_of_three.effect == pytest.approx(-0.05)  # the median relative change
    assert not _comparison([(1.0, 0.5), (1.0, 1.5)]).improvement  # 1 of 2 is not most
    diverged = _comparison([(1.0, 0.5), (1.0, 0.5), (1.0, 1.5)], ["completed", "diverged", "completed"])
    assert diverged.wins == 1 and not diverged.improvement  # a diverged run never wins
    assert not _comparison([(1.0, 0.5), (1.0, 0.5), (1.0, 0.5)], complete=False).improvement  # a seed missing


# -- the budget -------------------------------------------------------------------------------------
def test_budget_estimates_from_measured_runs_and_keeps_the_reserve():
    now = [0.0]
    budget = Budget(100.0, workers=2, epoch_s=2.0, clock=lambda: now[0])
    assert budget.run_seconds(5) == pytest.approx(1.0 + 10.0)  # setup guess + 5 epochs of the input run's time
    assert budget.phase_seconds(3, 5) == pytest.approx(5.0 + 2 * 11.0)  # start-up + two batches of two workers
    budget.record(4, 12.0, 14.0)  # 4 epochs took 12 s, the run 14 s
    budget.record_startup(3.0)
    assert budget.epoch_s == pytest.approx(3.0) and budget.setup_s == pytest.approx(2.0)
    now[0] = 81.0
    assert budget.may_start(5)  # 81 + 2 + 5 x 3 = 98
    assert not budget.may_start(5, reserve_s=5.0)  # a later phase's time is kept
    assert not budget.may_start(5, starting_workers=True)  # and the workers' start-up: 81 + 3 + 17


# -- combining verified changes (runs replaced by a table of numbers) ----------------------------------
class TableRunner(Runner):
    """A Runner whose "runs" give the best validation loss ``losses[changes]`` (per seed), instantly."""

    def __init__(self, losses, seeds=(0, 1, 2)):
        super().__init__(UNSTABLE, seeds, "unused", "local", Budget(1e6, 2, 1.0))
        self.losses = losses

    def run(self, arms, reserve_s=lambda: 0.0, seeds=None):
        for arm in arms:
            for s in self.seeds if seeds is None else seeds:
                arm.rows[s] = {"status": "completed", "run_dir": ""}

    def best_val(self, arm, seed, epochs=None):
        return self.losses[tuple(sorted(arm.changes))][seed]


def _two_candidates():
    return [Candidate("lr down", {"lr": 0.1}, "lr", ("F",), "r", "s"),
            Candidate("decay", {"weight_decay": 1e-4}, "weight_decay", ("F",), "r", "s")]


def test_verified_changes_are_combined_only_when_the_combination_wins():
    base, lr, wd = [1.0, 1.0, 1.0], [0.5, 0.6, 0.5], [0.9, 0.8, 0.9]
    worse = {(): base, ("lr",): lr, ("weight_decay",): wd, ("lr", "weight_decay"): [0.55, 0.7, 0.45]}
    cands = _two_candidates()
    v = verify(cands, TableRunner(worse), UNSTABLE.epochs)
    assert all(c.status == "verified" for c in cands)
    assert v.chosen == [cands[0]] and v.changes == {"lr": 0.1}  # the combination lost to lr alone on 2 of 3
    assert "lost" in v.notes[0] and "falls back to the best single change, lr down" in v.notes[0]
    better = {**worse, ("lr", "weight_decay"): [0.4, 0.5, 0.45]}
    v = verify(_two_candidates(), TableRunner(better), UNSTABLE.epochs)
    assert v.changes == {"lr": 0.1, "weight_decay": 1e-4} and v.final.wins == 3 and v.versus_best_single.wins == 3


# -- the rulebook -----------------------------------------------------------------------------------
def _finding(code, severity="warning", problem="a problem"):
    return Finding(code, severity, code.title(), problem, {}, "why", "fix")


def _evidence(codes, config, steps=()):
    history = nbtrain.History(steps=list(steps), epochs=[{"epoch": 0, "val_loss": 1.0}], meta={})
    return Evidence(config, history, Diagnosis(findings=[_finding(c) for c in codes]))


def test_most_steps_clipped_with_growing_norms_gives_a_lower_lr_never_a_higher_clip():
    steps = [{"epoch": 0, "step": i, "grad_norm": 1.0 + i, "clipped": True} for i in range(20)]  # p90 far above 2
    cands = rulebook.candidates(_evidence([HEAVY_CLIPPING, GRADIENT_GROWTH, GRADIENT_SPIKES], nbtrain.presets.ROUND1,
                                          steps))
    assert [c.changes for c in cands] == [{"lr": 1e-5}]
    assert cands[0].findings == (HEAVY_CLIPPING, GRADIENT_GROWTH) and "Playbook" in cands[0].source
    # without heavy clipping, spikes get a threshold near the observed 90th percentile
    cands = rulebook.candidates(_evidence([GRADIENT_SPIKES], nbtrain.presets.ROUND1, steps))
    p90 = nbtrain.measures.percentile([r["grad_norm"] for r in steps], 90)
    assert [c.changes for c in cands] == [{"grad_clip": float(f"{p90:.2g}")}]


def test_patience_that_fits_the_run_comes_from_the_scheduler_replayed():
    seed_curve = [0.8294, 0.5869, 0.6093, 0.6127, 0.6011, 0.5884]  # the write-up's: best at epoch 1
    # patience 2 cuts at the end of epoch 4 (the 3rd epoch without a new best), leaving epoch 5 at the new LR
    assert rulebook.fitting_patience(seed_curve, nbtrain.presets.ROUND1) == (2, 4)
    assert rulebook.fitting_patience([1.0, 0.9, 0.8, 0.7], nbtrain.presets.ROUND1) is None  # never stalled


# -- the real loop ----------------------------------------------------------------------------------
def test_the_first_epochs_of_a_run_do_not_depend_on_its_length():
    """The screen compares a candidate's short runs with the unchanged config's first epochs."""
    train_data, val_data = tiny_data(0)
    short = nbtrain.train(UNSTABLE.replace(epochs=2), tiny_model(1), train_data, val_data, sink=None)
    full = nbtrain.train(UNSTABLE, tiny_model(1), train_data, val_data, sink=None)
    assert [e["val_loss"] for e in short.history.epochs] == [e["val_loss"] for e in full.history.epochs[:2]]


def test_next_round_verifies_every_change_by_paired_runs(unstable_round):
    run, rnd, out, lines = unstable_round
    assert isinstance(rnd, nbtrain.Round) and rnd.number == 2 and rnd.config.name == "round2"
    assert {c.status for c in rnd.candidates} <= set(STATUSES) and len(rnd.candidates) >= 3
    assert rnd.chosen, "some change should beat lr 0.3 on this task"
    for c in rnd.chosen:  # verified at full length, on most seeds, and in the proposed config
        assert c.status == VERIFIED and c.full.improvement and c.full.epochs == UNSTABLE.epochs
        assert len(c.full.seeds) == 2 and all(s.baseline is not None for s in c.full.seeds)
        assert all(getattr(rnd.config, k) == v for k, v in c.changes.items())
    for c in rnd.candidates:
        if c.status != VERIFIED:  # what did not win is never in the round
            assert any(getattr(rnd.config, k) != v for k, v in c.changes.items())
        if c.screen is not None:
            assert c.screen.epochs == rnd.screen_epochs < UNSTABLE.epochs
    assert rnd.final is not None and rnd.final.improvement
    assert rnd.expectations and {e.status for e in rnd.expectations} <= {"held", "not held"}
    assert all("screen" in e.basis and e.evidence for e in rnd.expectations)
    assert rnd.time_used_s <= rnd.budget_s and rnd.runs_trained > 0
    assert any("seed 1" in line for line in lines)


def test_the_report_follows_the_write_up_and_is_written_to_out(unstable_round):
    _, rnd, out, _ = unstable_round
    text = rnd.to_markdown()
    headings = re.findall(r"^## (.+)$", text, flags=re.M)
    assert headings == list(SECTIONS)  # the write-up's order, then the verification
    assert (out / "round-2.md").read_text(encoding="utf-8") == text
    assert nbtrain.TrainConfig.from_json(out / "round-2-config.json") == rnd.config
    assert not list(out.glob(".*.tmp"))  # written atomically: no temporary file left
    for c in rnd.chosen:  # per-seed numbers of every applied fix
        for s in c.full.seeds:
            assert f"| {s.seed} | " in text
    assert f"{sum(e.held for e in rnd.expectations)} of {len(rnd.expectations)} held" in text
    nested = rnd.to_markdown(heading_level=3)  # under a notebook's "##" section
    assert nested.startswith("### Training Fixes - Round 2") and re.findall(r"^#### (.+)$", nested, re.M) == headings
    with pytest.raises(ValueError, match="heading_level must be an int from 1 to 4, got 0"):
        rnd.to_markdown(heading_level=0)


def test_a_second_call_reads_the_runs_back(unstable_round):
    run, rnd, out, _ = unstable_round
    train_data, val_data = tiny_data(0)
    again = nbtrain.next_round(run, seeds=(0, 1), budget_s=600, out=out, model_factory=tiny_model,
                               train_data=train_data, val_data=val_data, max_workers=2, sink=None)
    assert again.runs_trained == 0
    assert again.config == rnd.config and [e.status for e in again.expectations] == [
        e.status for e in rnd.expectations]


def test_a_budget_too_small_leaves_candidates_untested_and_recommends_nothing(tmp_path):
    train_data, val_data = tiny_data(0)
    run = nbtrain.train(UNSTABLE, tiny_model(1), train_data, val_data, sink=None)
    rnd = nbtrain.next_round(run, seeds=(0, 1), budget_s=0.5, out=tmp_path, model_factory=tiny_model,
                             train_data=train_data, val_data=val_data, sink=None)
    assert rnd.candidates and all(c.status == UNTESTED for c in rnd.candidates)
    assert not rnd.chosen and rnd.changes == {} and not rnd.expectations and rnd.runs_trained == 0
    text = rnd.to_markdown()
    assert "Not measured, so not recommended" in text
    assert all(c.name in text.split("## If Issues Persist")[1] for c in rnd.candidates)
    assert REJECTED not in {c.status for c in rnd.candidates}


@pytest.mark.parametrize("kwargs, message", [
    ({"seeds": []}, "seeds is empty"),
    ({"seeds": [0, -1]}, "seeds must be ints >= 0, got -1"),
    ({"budget_s": 0}, "budget_s must be a positive number of seconds, got 0"),
    ({"budget_s": float("nan")}, "budget_s must be a positive number of seconds, got nan"),
    ({"backend": "slurm"}, "backend must be one of 'local', 'ray', got 'slurm'"),
    ({"max_workers": 0}, "max_workers must be a positive int or None, got 0"),
    ({"out": 3}, "out must be a folder path or None, got 3"),
    ({"model_factory": lambda s: tiny_model(s), "train_data": 0, "val_data": 0}, "model_factory .* is a lambda"),
    ({"model_factory": tiny_model}, "model_factory needs train_data= and val_data="),
    ({"train_data": 0, "val_data": 0}, "train_data/val_data were given without model_factory"),
])
def test_bad_arguments_name_the_argument(kwargs, message):
    run = nbtrain.train(UNSTABLE.replace(epochs=1), tiny_model(0), *tiny_data(0), sink=None)
    with pytest.raises(ValueError, match=message):
        nbtrain.next_round(run, **kwargs, sink=None)


def test_bad_runs_name_what_is_missing(tmp_path):
    history = nbtrain.train(UNSTABLE.replace(epochs=1), tiny_model(0), *tiny_data(0), sink=None).history
    with pytest.raises(ValueError, match="config: the given history has no config"):
        nbtrain.next_round(history, sink=None)
    with pytest.raises(ValueError, match="not trained on nbtrain's reference experiment"):
        nbtrain.next_round(history, config=UNSTABLE, sink=None)
    with pytest.raises(ValueError, match="run must be a Run, a run folder or a History"):
        nbtrain.next_round(42, sink=None)
    with pytest.raises(ValueError, match="does not exist"):
        nbtrain.next_round(tmp_path / "missing", sink=None)


# -- the command line -------------------------------------------------------------------------------
def test_budget_and_seed_options_parse():
    assert parse_budget("10m") == 600 and parse_budget("90s") == 90 and parse_budget("600") == 600
    assert parse_budget("1.5h") == 5400 and parse_seeds("0,1,2") == [0, 1, 2]
    with pytest.raises(ValueError, match="--budget must be a positive time"):
        parse_budget("soon")
    with pytest.raises(ValueError, match="--seeds must be comma-separated ints"):
        parse_seeds("a,b")


def test_next_round_command_end_to_end(tmp_path, capsys):
    # lr 0.1 without clipping: the validation loss turns up in the last epoch, patience 5 cannot cut in 4 epochs
    config = UNSTABLE.replace(lr=0.1, grad_clip=None, seed=0)
    nbtrain.train(config, tiny_model(0), *tiny_data(0), out=tmp_path / "run", sink=None)
    out = tmp_path / "next"
    argv = ["next-round", str(tmp_path / "run"), "--seeds", "0,1", "--budget", "2m", "--out", str(out),
            "--model", "test_next_round:tiny_model", "--data", "test_next_round:tiny_data", "--quiet",
            "--max-workers", "1"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("# Training Fixes - Round 2") and "## Configuration Summary" in printed
    assert (out / "round-2.md").read_text(encoding="utf-8").strip() == printed.strip()
    assert main(["next-round", str(tmp_path / "run"), "--budget", "soon"]) == 2
    assert "--budget must be a positive time" in capsys.readouterr().err
