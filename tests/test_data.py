import socket

import numpy as np
import pandas as pd
import pytest
import torch

from nbtrain.reference.data import (REFERENCE_TASK, LorenzTask, Normalizer, ReferenceData,
                          lorenz_trajectory, make_reference_data)


@pytest.fixture(scope="module")
def data():
    return make_reference_data(seed=0)


def _all_tensors(d):
    return [*d.train.tensors, *d.val.tensors]


def test_same_seed_gives_bit_identical_tensors(data):
    again = make_reference_data(seed=0)
    for a, b in zip(_all_tensors(data), _all_tensors(again)):
        assert a.dtype == torch.float32
        assert torch.equal(a, b)


def test_different_seeds_differ(data):
    other = make_reference_data(seed=1)
    assert not torch.equal(data.train.tensors[0], other.train.tensors[0])
    assert not torch.equal(data.val.tensors[1], other.val.tensors[1])


def test_a_longer_validation_split_extends_the_reference_one(data):
    # benchmarks/bench_reference.py --n-val 4000 scores the same runs on more windows: the
    # training split and the normalizers stay bit-identical, the first 1,000 validation
    # windows are the reference ones.
    longer = make_reference_data(seed=0, task=LorenzTask(n_val=4000))
    assert len(longer.val) == 4000 and REFERENCE_TASK.n_val == 1000
    for a, b in zip(data.train.tensors, longer.train.tensors):
        assert torch.equal(a, b)
    assert longer.input_normalizer.to_dict() == data.input_normalizer.to_dict()
    assert longer.target_normalizer.to_dict() == data.target_normalizer.to_dict()
    for a, b in zip(data.val.tensors, longer.val.tensors):
        assert torch.equal(a, b[: len(a)])
    assert longer.task.fingerprint() != data.task.fingerprint()


def test_never_touches_the_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("make_reference_data opened a socket")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    d = make_reference_data(seed=3)
    assert len(d.train) == REFERENCE_TASK.n_train


def test_shapes(data):
    t = REFERENCE_TASK
    x_tr, y_tr = data.train.tensors
    x_va, y_va = data.val.tensors
    assert x_tr.shape == (t.n_train, 3 * t.window) == (t.n_train, 48)
    assert y_tr.shape == (t.n_train, 3)
    assert x_va.shape == (t.n_val, 48)
    assert y_va.shape == (t.n_val, 3)
    assert isinstance(data, ReferenceData) and data.normalized


def test_normalizers_are_fitted_on_the_training_split_only(data):
    x_tr, y_tr = data.train.tensors
    # Fed training data is standardized per feature ...
    assert torch.allclose(x_tr.mean(0), torch.zeros(48), atol=1e-4)
    assert torch.allclose(x_tr.std(0, correction=0), torch.ones(48), atol=1e-4)
    assert torch.allclose(y_tr.mean(0), torch.zeros(3), atol=1e-4)
    # ... the normalizer holds the raw training mean ...
    raw = make_reference_data(seed=0, normalize=False)
    raw_x_tr, raw_y_tr = raw.train.tensors
    raw_x_va, raw_y_va = raw.val.tensors
    assert torch.allclose(data.input_normalizer.mean, raw_x_tr.double().mean(0).float(), atol=1e-4)
    assert torch.allclose(data.target_normalizer.mean, raw_y_tr.double().mean(0).float(), atol=1e-4)
    # ... which is not the mean of the whole series (train + val) ...
    whole = torch.cat([raw_y_tr, raw_y_va]).double().mean(0).float()
    assert (data.target_normalizer.mean - whole).abs().max() > 1e-2
    # ... and the validation split went through the same (training) transform.
    assert torch.allclose(data.val.tensors[0], data.input_normalizer.transform(raw_x_va), atol=1e-5)
    assert torch.allclose(data.val.tensors[1], data.target_normalizer.transform(raw_y_va), atol=1e-5)


def test_normalize_false_feeds_raw_values(data):
    raw = make_reference_data(seed=0, normalize=False)
    assert not raw.normalized
    assert raw.input_normalizer.is_identity and raw.target_normalizer.is_identity
    x = raw.train.tensors[0]
    # Lorenz-63 z lives around 25 on the attractor: clearly not standardized.
    assert x.reshape(len(x), -1, 3)[..., 2].mean() > 15
    assert torch.allclose(data.input_normalizer.inverse(data.train.tensors[0]), x, atol=1e-3)


def test_inputs_are_time_major_windows_and_targets_lie_ahead():
    t = REFERENCE_TASK
    raw = make_reference_data(seed=2, normalize=False)
    x, y = raw.train.tensors
    w = x.reshape(len(x), t.window, 3)
    # Window i+1 is window i shifted by one state.
    assert torch.equal(w[1, :-1], w[0, 1:])
    # The target of window i is the last state of window i + horizon.
    assert torch.equal(y[0], w[t.horizon, -1])


def test_series_is_on_the_chaotic_attractor():
    traj = lorenz_trajectory((1.0, 1.0, 1.0), 6000, 0.01)[1000:]
    # It visits both lobes (x changes sign many times) and does not settle down.
    assert np.sum(np.diff(np.sign(traj[:, 0])) != 0) > 20
    assert traj[-500:, 0].std() > 3


def test_stats_describe_raw_and_fed_data(data):
    df = data.stats()
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns) == ["split", "stage", "group", "mean", "std", "min", "max"]
    assert len(df) == 2 * 2 * 6
    fed = df[(df.split == "train") & (df.stage == "fed")].set_index("group")
    assert np.allclose(fed["mean"], 0, atol=1e-3)
    raw = df[(df.split == "train") & (df.stage == "raw")].set_index("group")
    assert raw.loc["input z", "mean"] > 15


def test_normalizer_round_trip_and_dict():
    x = torch.randn(100, 4) * torch.tensor([1.0, 10.0, 0.0, 3.0]) + 5
    n = Normalizer.fit(x)
    assert n.std[2] == pytest.approx(1e-8)  # constant column: floored, no division by zero
    assert torch.allclose(n.inverse(n.transform(x)), x, atol=1e-4)
    back = Normalizer.from_dict(n.to_dict())
    assert torch.equal(back.mean, n.mean) and torch.equal(back.std, n.std)
    ident = Normalizer.identity(4)
    assert torch.equal(ident.transform(x), x) and ident.is_identity


@pytest.mark.parametrize("kwargs, message", [
    ({"seed": -1}, r"seed must be a non-negative int, got -1"),
    ({"seed": 1.5}, r"seed must be a non-negative int, got 1\.5"),
    ({"seed": True}, r"seed must be a non-negative int, got True"),
    ({"normalize": "yes"}, r"normalize must be a bool, got 'yes'"),
    ({"task": {"horizon": 5}}, r"task must be a LorenzTask, got dict"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_reference_data(**kwargs)


@pytest.mark.parametrize("kwargs, message", [
    ({"horizon": 0}, r"horizon must be an int >= 1, got 0"),
    ({"noise": -0.1}, r"noise must be a number >= 0, got -0\.1"),
    ({"dt": 0}, r"dt must be a positive number, got 0"),
])
def test_bad_task_constants(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LorenzTask(**kwargs)


def test_normalizer_bad_input():
    with pytest.raises(ValueError, match=r"x must have shape \(N >= 1, F\), got \(3,\)"):
        Normalizer.fit(torch.zeros(3))
    with pytest.raises(ValueError, match=r"n_features must be a positive int, got 0"):
        Normalizer.identity(0)
