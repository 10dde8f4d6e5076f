"""The plateau simulator must agree with torch's ReduceLROnPlateau exactly."""

from __future__ import annotations

import json
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nbtrain.diagnosis.plateau import plateau_state, simulate_plateau

SEED_VAL = [0.8294, 0.5869, 0.6093, 0.6127, 0.6011, 0.5884]


def torch_lrs(values, lr, **kwargs) -> list[float]:
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=lr)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, **kwargs)
    out = []
    for v in values:
        sched.step(v)
        out.append(opt.param_groups[0]["lr"])
    return out


# Values from a small pool so ties, plateaus and near-ties (within the threshold) happen.
POOL = [0.5, 0.5 * (1 - 1e-4), 0.49995, 0.6, 0.61, 1.0, 1.00005, 2.0, 0.0, -0.5, float("nan")]


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.sampled_from(POOL), max_size=25),
    lr=st.sampled_from([1.0, 0.1, 2e-5, 1e-7, 3e-8]),
    patience=st.integers(0, 4),
    factor=st.sampled_from([0.1, 0.5, 0.0, 0.9]),
    threshold=st.sampled_from([0.0, 1e-4, 0.01, 0.5]),
    threshold_mode=st.sampled_from(["rel", "abs"]),
    cooldown=st.integers(0, 3),
    min_lr=st.sampled_from([0.0, 1e-6, 0.01]),
    mode=st.sampled_from(["min", "max"]),
    eps=st.sampled_from([1e-8, 0.0]),
)
def test_simulator_matches_torch_exactly(
    values, lr, patience, factor, threshold, threshold_mode, cooldown, min_lr, mode, eps
):
    kwargs = dict(
        patience=patience,
        factor=factor,
        threshold=threshold,
        threshold_mode=threshold_mode,
        cooldown=cooldown,
        min_lr=min_lr,
        mode=mode,
        eps=eps,
    )
    assert simulate_plateau(values, lr, **kwargs) == torch_lrs(values, lr, **kwargs)
    state = plateau_state(values, lr, **kwargs)
    assert state.lr == (torch_lrs(values, lr, **kwargs) or [lr])[-1]
    json.dumps(state.to_dict(), allow_nan=False)


@settings(max_examples=100, deadline=None)
@given(
    values=st.lists(st.sampled_from(POOL[:-1]), max_size=15),
    patience=st.integers(0, 4),
    cooldown=st.integers(0, 2),
    mode=st.sampled_from(["min", "max"]),
)
def test_next_cut_epoch_is_where_torch_cuts_if_nothing_improves(values, patience, cooldown, mode):
    state = plateau_state(values, 1.0, patience, cooldown=cooldown, mode=mode)
    worst = math.inf if mode == "min" else -math.inf
    # a finite first value if there is no best yet, then values that never improve
    tail = ([0.5] if state.best is None else []) + [worst] * (patience + cooldown + 4)
    lrs = torch_lrs(values + tail, 1.0, patience=patience, cooldown=cooldown, mode=mode)
    before = lrs[len(values) - 1] if values else 1.0
    # None when torch would not cut any more (the LR is too small for a cut larger than eps)
    first_cut = next((i for i in range(len(values), len(lrs)) if lrs[i] < before), None)
    assert state.next_cut_epoch == first_cut


def test_the_write_ups_numbers():
    assert simulate_plateau(SEED_VAL, 2e-5, 5) == [2e-5] * 6
    state = plateau_state(SEED_VAL, 2e-5, 5)
    assert state.best == 0.5869
    assert state.best_epoch == 1
    assert round(state.improvement_threshold, 5) == 0.58684
    assert state.improvement_threshold == pytest.approx(0.58684131)
    assert state.num_bad_epochs == 4
    assert state.epochs_since_best == 4
    assert state.next_cut_epoch == 7
    assert state.keras_cut_epoch == 6  # Keras: wait reaches patience one epoch earlier
    assert state.cuts == []


def test_cut_is_logged_with_old_and_new_lr():
    state = plateau_state([1.0, 1.0, 1.0, 1.0], 0.1, patience=1, cooldown=1)
    assert state.cuts == [(2, 0.1, pytest.approx(0.01))]
    assert state.cooldown_counter == 0  # epoch 3 spent the cooldown
    assert state.next_cut_epoch == 5


def test_abs_and_max_thresholds():
    assert plateau_state([1.0], 1.0, 2, threshold=0.1, threshold_mode="abs").improvement_threshold == pytest.approx(0.9)
    assert plateau_state([1.0], 1.0, 2, threshold=0.1, mode="max").improvement_threshold == pytest.approx(1.1)


def test_no_cut_possible_at_min_lr():
    state = plateau_state([1.0, 2.0], 1e-3, patience=0, min_lr=1e-3)
    assert state.next_cut_epoch is None


def test_empty_and_all_nan():
    assert simulate_plateau([], 1e-3, 2) == []
    state = plateau_state([], 1e-3, 2)
    assert state.best is None and state.next_cut_epoch == 3 and state.keras_cut_epoch == 2
    nan_state = plateau_state([float("nan")] * 3, 1e-3, 1)
    assert nan_state.best is None and nan_state.to_dict()["best"] is None
    assert len(nan_state.cuts) == 1


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(lr=0.0), "lr must be > 0, got 0.0"),
        (dict(lr=float("nan")), "lr must be a finite number"),
        (dict(patience=-1), "patience must be an int >= 0, got -1"),
        (dict(patience=1.5), "patience must be an int >= 0, got 1.5"),
        (dict(factor=1.0), "factor must be < 1, got 1.0"),
        (dict(threshold=-1e-4), "threshold must be >= 0"),
        (dict(threshold_mode="relative"), "threshold_mode must be 'rel' or 'abs', got 'relative'"),
        (dict(cooldown=-2), "cooldown must be an int >= 0, got -2"),
        (dict(min_lr=-1.0), "min_lr must be >= 0"),
        (dict(mode="minimum"), "mode must be 'min' or 'max', got 'minimum'"),
        (dict(eps=-1.0), "eps must be >= 0"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, match):
    args = dict(lr=1e-3, patience=2) | kwargs
    with pytest.raises(ValueError, match=match):
        simulate_plateau([1.0], **args)


def test_bad_values():
    with pytest.raises(TypeError, match="val_losses must be a sequence"):
        simulate_plateau(0.5, 1e-3, 2)
    with pytest.raises(TypeError, match=r"val_losses\[1\] must be a number, got 'x'"):
        simulate_plateau([0.5, "x"], 1e-3, 2)
