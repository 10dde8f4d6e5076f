import json

import pytest

from nbtrain import TrainConfig, presets

BAD_VALUES = [
    ("lr", 0.0, r"lr must be > 0, got 0\.0"),
    ("lr", -1e-3, r"lr must be > 0, got -0\.001"),
    ("lr", float("nan"), r"lr must be finite, got nan"),
    ("lr", "fast", r"lr must be a number, got 'fast'"),
    ("grad_clip", -1.0, r"grad_clip must be > 0, got -1\.0"),
    ("grad_clip", 0, r"grad_clip must be > 0, got 0"),
    ("scheduler", "step", r"scheduler must be one of 'plateau', 'cosine_warm_restarts', 'none', got 'step'"),
    ("scheduler_patience", -1, r"scheduler_patience must be >= 0, got -1"),
    ("scheduler_patience", 2.5, r"scheduler_patience must be an int, got 2\.5"),
    ("scheduler_factor", 1.0, r"scheduler_factor must be < 1, got 1\.0"),
    ("scheduler_factor", 0.0, r"scheduler_factor must be > 0, got 0\.0"),
    ("scheduler_threshold", -0.1, r"scheduler_threshold must be >= 0, got -0\.1"),
    ("scheduler_cooldown", -2, r"scheduler_cooldown must be >= 0, got -2"),
    ("min_lr", -1e-9, r"min_lr must be >= 0, got -1e-09"),
    ("cosine_t0", 0, r"cosine_t0 must be >= 1, got 0"),
    ("cosine_t_mult", 0, r"cosine_t_mult must be >= 1, got 0"),
    ("batch_size", 0, r"batch_size must be >= 1, got 0"),
    ("batch_size", True, r"batch_size must be an int, got True"),
    ("grad_accum_steps", 0, r"grad_accum_steps must be >= 1, got 0"),
    ("epochs", 0, r"epochs must be >= 1, got 0"),
    ("seed", -1, r"seed must be >= 0, got -1"),
    ("data_seed", -3, r"data_seed must be >= 0, got -3"),
    ("normalize", "yes", r"normalize must be True or False, got 'yes'"),
    ("weight_decay", -0.5, r"weight_decay must be >= 0, got -0\.5"),
    ("compile", 1, r"compile must be True or False, got 1"),
    ("fused_adam", "no", r"fused_adam must be True or False, got 'no'"),
    ("device", "gpu", r"device must be one of 'auto', 'cpu', 'cuda', 'cuda:N', 'mps' \(N a GPU index\), got 'gpu'"),
    ("device", "cuda:x", r"device must be one of .*, got 'cuda:x'"),
    ("precision", "16", r"precision must be one of '32', 'bf16-mixed', '16-mixed', got '16'"),
]


@pytest.mark.parametrize("field,value,message", BAD_VALUES, ids=[f"{f}={v!r}" for f, v, _ in BAD_VALUES])
def test_bad_values_name_the_field_and_value(field, value, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**{field: value})


def test_every_field_is_validated():
    checked = {f for f, _, _ in BAD_VALUES}
    fields = set(TrainConfig.__dataclass_fields__) - {"name"}
    assert fields <= checked, f"fields without a validation test: {sorted(fields - checked)}"


def test_name_must_be_a_string():
    with pytest.raises(TypeError, match=r"name must be a str, got int: 3"):
        TrainConfig(name=3)


def test_clip_can_be_switched_off():
    assert TrainConfig(grad_clip=None).grad_clip is None


def test_replace_validates_and_rejects_unknown_fields():
    with pytest.raises(ValueError, match=r"grad_clip must be > 0, got 0\.0"):
        presets.ROUND1.replace(grad_clip=0.0)
    with pytest.raises(ValueError, match=r"unknown TrainConfig field\(s\): learning_rate"):
        presets.ROUND1.replace(learning_rate=1e-3)


def test_json_round_trip(tmp_path):
    for config in presets.ALL.values():
        assert TrainConfig.from_json(config.to_json()) == config
        path = tmp_path / f"{config.name}.json"
        config.to_json(path)
        assert TrainConfig.from_json(path) == config
        assert json.loads(path.read_text())["lr"] == config.lr


def test_from_dict_rejects_unknown_keys_and_bad_json(tmp_path):
    with pytest.raises(ValueError, match=r"unknown TrainConfig field\(s\): patience"):
        TrainConfig.from_dict({"patience": 3})
    with pytest.raises(ValueError, match="config is not valid JSON"):
        TrainConfig.from_json("{not json")
    with pytest.raises(FileNotFoundError, match="no config file at"):
        TrainConfig.from_json(tmp_path / "missing.json")


def test_presets_match_the_write_up():
    r1, r2 = presets.ROUND1, presets.ROUND2
    assert (r1.lr, r1.grad_clip, r1.scheduler_patience, r1.scheduler) == (2e-5, 2.0, 5, "plateau")
    assert (r2.lr, r2.grad_clip, r2.scheduler_patience, r2.scheduler) == (1e-5, 3.0, 3, "plateau")
    assert r1.batch_size == r2.batch_size == 8
    fb = presets.FALLBACKS
    assert fb["lr_5e-6"].lr == 5e-6
    assert fb["batch_16"].batch_size == 16 and fb["batch_32"].batch_size == 32
    assert fb["accum_2"].grad_accum_steps == 2 and fb["accum_4"].grad_accum_steps == 4
    assert fb["cosine_warm_restarts"].scheduler == "cosine_warm_restarts"
    assert fb["no_normalization"].normalize is False
    # every fallback changes exactly one training setting on top of round 2
    for name, config in fb.items():
        diff = {k for k, v in config.to_dict().items() if v != r2.to_dict()[k]} - {"name"}
        assert len(diff) == 1, (name, diff)


def test_get_preset():
    assert presets.get("ROUND2") is presets.ROUND2
    with pytest.raises(ValueError, match=r"unknown preset 'round3'; choose one of: round1, round2"):
        presets.get("round3")
