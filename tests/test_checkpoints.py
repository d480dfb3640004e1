"""Resume after a corrupt newest checkpoint; refuse a workdir trained on another dataset."""

import shutil

import numpy as np
import pytest
import tensorflow as tf
from test_train import TINY, toy_dataset

from qtransformer.training.checkpoints import checkpoint_paths, fall_back_to_readable, read_problem
from qtransformer.training.train import train


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return toy_dataset(tmp_path_factory.mktemp("data") / "toy")


def _truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def test_corrupt_newest_checkpoint_falls_back_to_previous(dataset, tmp_path):
    work = tmp_path / "run"
    train(dataset, work, TINY.replace(steps=30), progress=False)
    ckpts = work / "train" / "checkpoints"
    names = [p.rsplit("/", 1)[1] for p in checkpoint_paths(ckpts)]
    assert names == ["ckpt-10", "ckpt-20", "ckpt-30"]
    good = tf.train.load_checkpoint(str(ckpts / "ckpt-20"))
    step_var = next(k for k in good.get_variable_to_shape_map() if k.startswith("train_step"))
    assert good.get_tensor(step_var) == 20
    _truncate(ckpts / "ckpt-30.data-00000-of-00001")  # a copy cut short
    assert "Read less bytes" in read_problem(str(ckpts / "ckpt-30"))
    files_before = {p.name for p in ckpts.iterdir()}

    notes = []
    result = train(dataset, work, TINY.replace(steps=40), progress=False, log=notes.append)
    assert result["resumed_from"] == 20 and result["step"] == 40
    assert any("ckpt-30" in n and "resuming from ckpt-20" in n for n in notes), notes
    assert files_before <= {p.name for p in ckpts.iterdir()}  # nothing deleted
    assert tf.train.latest_checkpoint(str(ckpts)).endswith("ckpt-40")
    assert read_problem(str(ckpts / "ckpt-40")) is None


def _small_checkpoints(folder, steps=(5, 10)):
    """Checkpoints of one variable, written by a tf.train.CheckpointManager like the Learner's."""
    value = tf.Variable(0.0)
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(v=value), str(folder), 3)
    for step in steps:
        value.assign(float(step))
        manager.save(checkpoint_number=step)
    return folder


def test_no_readable_checkpoint_is_refused_naming_each(tmp_path):
    ckpts = _small_checkpoints(tmp_path / "checkpoints")
    for index in ckpts.glob("ckpt-*.index"):
        _truncate(index, keep=0.3)
    with pytest.raises(ValueError, match=r"no checkpoint in .* can be read .*ckpt-10.*ckpt-5"):
        fall_back_to_readable(ckpts)


def test_readable_newest_changes_nothing_and_state_file_order_is_repaired(tmp_path):
    ckpts = _small_checkpoints(tmp_path / "checkpoints", steps=(5, 10, 15))
    state = (ckpts / "checkpoint").read_text()
    assert fall_back_to_readable(ckpts) is None
    assert (ckpts / "checkpoint").read_text() == state
    _truncate(ckpts / "ckpt-15.data-00000-of-00001")
    note = fall_back_to_readable(ckpts)
    assert "ckpt-15" in note and "resuming from ckpt-10" in note
    # The manager now restores ckpt-10 (relative paths: the folder can move).
    assert tf.train.latest_checkpoint(str(ckpts)) == str(ckpts / "ckpt-10")
    value = tf.Variable(0.0)
    tf.train.Checkpoint(v=value).restore(tf.train.latest_checkpoint(str(ckpts)))
    assert value.numpy() == 10.0
    assert sorted(p.name for p in ckpts.glob("*.index")) == [
        "ckpt-10.index",
        "ckpt-15.index",
        "ckpt-5.index",
    ]


def test_workdir_of_another_dataset_spec_is_refused(dataset, tmp_path):
    work = tmp_path / "run"
    train(dataset, work, TINY.replace(steps=10), progress=False)
    other = tmp_path / "wider"
    shutil.copytree(dataset, other)
    from qtransformer.datasets import Episode, write_dataset

    rng = np.random.default_rng(1)
    episodes = [
        Episode(states=rng.normal(size=(7, 5)), actions=rng.uniform(-1, 1, size=(6, 2)),
                rewards=np.r_[np.zeros(5), 1.0].astype(np.float32), terminal=True,
                instruction="reach the goal", task="toy", source="expert")
        for _ in range(4)
    ]  # fmt: skip
    write_dataset(other, episodes, action_low=[-1, -1], action_high=[1, 1], overwrite=True)
    with pytest.raises(ValueError, match=r"trained on dataset .*toy.*state_dim 3 -> 5"):
        train(other, work, TINY.replace(steps=20), progress=False)
