import sys

import pytest

from nbtrain import TrainConfig, train
from nbtrain.training.tensorboard import EPOCH_SCALARS, STEP_SCALARS, TensorBoardCallback

CFG = TrainConfig(lr=3e-2, grad_clip=4.0, epochs=3, batch_size=16, scheduler_patience=0, name="tiny-tb")


@pytest.fixture
def tensorboard(require):
    """The tensorboard package (the writer and the event reader); missing: skip, or fail under CI=true."""
    require("torch.utils.tensorboard", "the TensorBoard callback needs the tensorboard extra "
                                       "(pip install nbtrain[tensorboard])")
    return require("tensorboard.backend.event_processing.event_accumulator", "reading event files needs tensorboard")


def _read_scalars(log_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_event_files_hold_the_history_values(tensorboard, tiny_task, tmp_path, quiet):
    model, tr, va = tiny_task
    cb = TensorBoardCallback(tmp_path / "tb")
    run = train(CFG, model, tr, va, callbacks=[cb], sink=quiet.append)
    assert run.status == "completed"
    assert cb.writer is None  # closed on train end
    scalars = _read_scalars(tmp_path / "tb")
    assert set(scalars) == {f"step/{k}" for k in STEP_SCALARS} | {f"epoch/{k}" for k in EPOCH_SCALARS}

    steps = run.history.steps
    for key in STEP_SCALARS:
        logged = scalars[f"step/{key}"]
        assert [s for s, _ in logged] == [r["step"] for r in steps]
        assert [v for _, v in logged] == pytest.approx([float(r[key]) for r in steps], rel=1e-6)
    assert any(r["clipped"] for r in steps) and not all(r["clipped"] for r in steps)

    epochs = run.history.epochs
    for key in EPOCH_SCALARS:
        logged = scalars[f"epoch/{key}"]
        assert [s for s, _ in logged] == [r["epoch"] for r in epochs]
        assert [v for _, v in logged] == pytest.approx([r[key] for r in epochs], rel=1e-6)


def test_lr_cuts_are_logged_as_text(tensorboard, tiny_task, tmp_path, quiet):
    EventAccumulator = tensorboard.EventAccumulator

    model, tr, va = tiny_task
    # lr 0.1 overshoots on this task, so validation loss stops improving and patience 0 cuts
    config = CFG.replace(lr=0.1, grad_clip=None, epochs=4)
    run = train(config, model, tr, va, callbacks=[TensorBoardCallback(tmp_path)], sink=quiet.append)
    cuts = [line for line in quiet if line.startswith("Learning rate reduced")]
    assert cuts
    acc = EventAccumulator(str(tmp_path), size_guidance={"tensors": 0})
    acc.Reload()
    texts = [e.tensor_proto.string_val[0].decode() for e in acc.Tensors("lr_cuts/text_summary")]
    assert texts == cuts
    assert run.status == "completed"


def test_missing_tensorboard_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(ImportError, match=r"pip install nbtrain\[tensorboard\]"):
        TensorBoardCallback(tmp_path)


def test_bad_arguments():
    with pytest.raises(TypeError, match="log_dir must be a folder path, got int"):
        TensorBoardCallback(3)
    with pytest.raises(ValueError, match="flush_secs must be a positive int, got 0"):
        TensorBoardCallback("x", flush_secs=0)
