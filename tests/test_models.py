import pytest
import torch

from nbtrain.reference.models import ReferenceModel, count_parameters


def test_parameter_count_matches_the_researchers_model():
    n = count_parameters(ReferenceModel())
    assert abs(n - 671_000) / 671_000 < 0.01, n


def test_count_parameters_counts_trainable_only():
    model = ReferenceModel(in_features=4, hidden=5, depth=2, out_features=2)
    total = count_parameters(model)
    assert total == (4 * 5 + 5) + (5 * 5 + 5) + (5 * 2 + 2)
    model.net[0].weight.requires_grad_(False)
    assert count_parameters(model) == total - 4 * 5


def test_forward_shapes():
    model = ReferenceModel()
    assert model(torch.zeros(8, 48)).shape == (8, 3)
    small = ReferenceModel(in_features=6, hidden=7, depth=1, out_features=2)
    assert small(torch.randn(5, 6)).shape == (5, 2)


def test_same_seed_same_init():
    torch.manual_seed(0)
    a = ReferenceModel()
    torch.manual_seed(0)
    b = ReferenceModel()
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


@pytest.mark.parametrize("kwargs, message", [
    ({"hidden": 0}, r"hidden must be a positive int, got 0"),
    ({"depth": -1}, r"depth must be a positive int, got -1"),
    ({"in_features": 4.5}, r"in_features must be a positive int, got 4\.5"),
    ({"out_features": True}, r"out_features must be a positive int, got True"),
])
def test_bad_constructor_args(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ReferenceModel(**kwargs)


def test_bad_input_shape():
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 48\), got \(8, 47\)"):
        ReferenceModel()(torch.zeros(8, 47))


def test_count_parameters_rejects_non_modules():
    with pytest.raises(TypeError, match="model must be a torch.nn.Module, got list"):
        count_parameters([])
