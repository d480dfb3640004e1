"""`qtransformer train`: Learner loop, checkpoints and resume, export, NaN guard, strategies."""

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from qtransformer.datasets import Episode, write_dataset
from qtransformer.training.config import TrainConfig
from qtransformer.training.train import add_arguments, config_from_args, train

TINY = TrainConfig(checkpoint_every=10, summary_every=5, learning_rate=1e-3).replace(
    batch_size=16, action_bins=8, value_bins=11, embed_dim=16, num_layers=1, num_heads=2,
    head_rank=8, shuffle_buffer=100,
)  # fmt: skip


def toy_dataset(path, episodes=8, length=6, reward_value=1.0, seed=0, action_dim=2):
    """Episodes of 3-d states and `action_dim`-d actions in [-1, 1]; every other one succeeds."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(episodes):
        success = i % 2 == 0
        rewards = np.zeros(length, np.float32)
        rewards[-1] = reward_value if success else 0.0
        out.append(
            Episode(
                states=rng.normal(size=(length + 1, 3)),
                actions=rng.uniform(-1, 1, size=(length, action_dim)),
                rewards=rewards,
                terminal=success,
                instruction="reach the goal" if i % 3 else "push the block",
                task="toy",
                source="expert" if success else "noisy",
            )
        )
    return write_dataset(path, out, action_low=[-1] * action_dim, action_high=[1] * action_dim)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return toy_dataset(tmp_path_factory.mktemp("data") / "toy")


def policy_weights(path):
    return [v.numpy() for v in tf.saved_model.load(str(path)).model_variables]


def test_train_checkpoints_exports_and_resumes(dataset, tmp_path):
    work = tmp_path / "run"
    evals = []

    def eval_fn(policy, step):
        evals.append(step)
        return {"success_rate": step / 100}

    first = train(dataset, work, TINY.replace(steps=20, eval_every=10), progress=False,
                  eval_fn=eval_fn)  # fmt: skip
    assert first["step"] == 20 and first["resumed_from"] == 0
    assert evals == [10, 20] and first["eval/success_rate"] == 0.2
    assert np.isfinite(first["loss"]) and first["steps_per_s"] > 0
    assert json.loads((work / "config.json").read_text())["steps"] == 20
    assert sorted(os.listdir(work / "policies")) == ["10", "20"]
    assert list((work / "train").glob("events.out.tfevents*"))
    assert list((work / "eval").glob("events.out.tfevents*"))
    assert tf.train.latest_checkpoint(str(work / "train" / "checkpoints")).endswith("ckpt-20")

    # Rerun with the policy removed: nothing to train, the restored weights are exported.
    saved = policy_weights(work / "policies" / "20")
    shutil.rmtree(work / "policy")
    again = train(dataset, work, TINY.replace(steps=20), progress=False)
    assert again["resumed_from"] == 20 and again["step"] == 20
    restored = policy_weights(work / "policy")
    assert len(saved) == len(restored) > 10
    for before, after in zip(saved, restored, strict=True):
        np.testing.assert_array_equal(after, before)

    # Continue to 30: the step counter and Adam's state carry on from the checkpoint.
    more = train(dataset, work, TINY.replace(steps=30), progress=False)
    assert more["resumed_from"] == 20 and more["step"] == 30
    ckpt = tf.train.latest_checkpoint(str(work / "train" / "checkpoints"))
    assert ckpt.endswith("ckpt-30")
    assert (
        tf.train.load_variable(ckpt, "agent/_optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE")
        == 30
    )

    # The exported policy runs from the SavedModel alone and stays in bounds.
    from tf_agents.trajectories import time_step as ts

    policy = tf.saved_model.load(str(work / "policy"))
    obs = {"state": tf.random.normal([5, 3]), "instruction": tf.constant(["reach the goal"] * 5)}
    step = ts.TimeStep(tf.zeros([5], tf.int32), tf.zeros([5]), tf.ones([5]), obs)
    action = policy.action(step).action.numpy()
    assert action.shape == (5, 2) and np.all(np.abs(action) <= 1.0)


def test_refuses_workdir_with_other_model_shape(dataset, tmp_path):
    work = tmp_path / "run"
    work.mkdir()
    (work / "config.json").write_text(TINY.to_json())
    with pytest.raises(ValueError, match="different model shape.*embed_dim"):
        train(dataset, work, TINY.replace(embed_dim=32), progress=False)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(dataset, tmp_path):
    work = tmp_path / "run"
    train(dataset, work, TINY.replace(steps=10), progress=False)
    poisoned = toy_dataset(tmp_path / "nan", reward_value=float("nan"))
    with pytest.raises(FloatingPointError, match="non-finite loss"):
        train(poisoned, work, TINY.replace(steps=30), progress=False)
    ckpt = tf.train.latest_checkpoint(str(work / "train" / "checkpoints"))
    assert ckpt.endswith("ckpt-10")
    weights = [tf.train.load_variable(ckpt, n) for n, _ in tf.train.list_variables(ckpt)]
    assert all(
        np.all(np.isfinite(w)) for w in weights if np.issubdtype(np.asarray(w).dtype, np.floating)
    )


MIRRORED_SCRIPT = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import numpy as np
from qtransformer.tools import benchmarks
from qtransformer.training.config import TrainConfig
from qtransformer.training.train import train
from qtransformer.training.strategy import make_strategy

config = TrainConfig(grad_clip=1e6, learning_rate=1e-3).replace(
    embed_dim=16, num_layers=1, num_heads=2, action_bins=8, value_bins=11, head_rank=8)
batch = benchmarks.synthetic_batch(16, 8)
tf.random.set_seed(0)
single = benchmarks.make_agent(config)
strategy = make_strategy("mirrored")
with strategy.scope():
    mirrored = benchmarks.make_agent(config)
for a, b in zip(mirrored.q_network.variables, single.q_network.variables, strict=True):
    a.assign(b)
mirrored.initialize()
halves = [tf.nest.map_structure(lambda x: x[i * 8:(i + 1) * 8], batch) for i in range(2)]
per_replica = strategy.experimental_distribute_values_from_function(
    lambda ctx: halves[ctx.replica_id_in_sync_group])
step = tf.function(lambda b: strategy.run(mirrored.train, args=(b,)).loss)
losses = {"single": [], "mirrored": []}
for _ in range(3):
    losses["single"].append(float(single.train(batch).loss))
    losses["mirrored"].append(float(strategy.reduce("sum", step(per_replica), axis=None)))
diff = max(float(np.abs(a.numpy() - b.numpy()).max())
           for a, b in zip(mirrored.q_network.variables, single.q_network.variables))
run = train(sys.argv[1], sys.argv[2], TrainConfig.from_dict(json.loads(sys.argv[3])),
            progress=False)
print(json.dumps({"replicas": strategy.num_replicas_in_sync, "losses": losses,
                  "max_weight_diff": diff, "train_step": run["step"], "loss": run["loss"]}))
"""


def test_mirrored_strategy_on_two_cpus_matches_one_device(dataset, tmp_path):
    config = json.loads(TINY.replace(steps=6, strategy="mirrored").to_json())
    result = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT, str(dataset), str(tmp_path / "run"),
         json.dumps(config)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["replicas"] == 2
    # Each replica takes half the batch; gradients are summed after a 1/replicas scaling,
    # so three Adam steps give the same weights and losses as one device on the full batch.
    np.testing.assert_allclose(out["losses"]["mirrored"], out["losses"]["single"], rtol=1e-4)
    assert out["max_weight_diff"] < 1e-4
    assert out["train_step"] == 6 and np.isfinite(out["loss"])


def test_cli_flags_override_config_file(tmp_path):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    path = Path(tmp_path / "c.json")
    path.write_text(json.dumps({"loss": "mse", "steps": 7, "model": {"embed_dim": 24}}))
    args = parser.parse_args(
        ["--dataset", "d", "--workdir", "w", "--config", str(path), "--steps", "9",
         "--no-mc-lower-bound", "--head", "full", "--lr", "0.01", "--layers", "3", "--xla"]
    )  # fmt: skip
    config = config_from_args(args)
    assert (config.loss, config.steps, config.model.embed_dim) == ("mse", 9, 24)
    assert config.mc_lower_bound is False and config.use_xla is True
    assert config.xla_decoder is True  # --xla is the train step; the decoder's default stays
    off = parser.parse_args(["--dataset", "d", "--workdir", "w", "--no-xla-decoder"])
    assert (config_from_args(off).xla_decoder, config_from_args(off).use_xla) == (False, False)
    assert (config.model.head, config.model.num_layers, config.learning_rate) == ("full", 3, 0.01)
    assert config.data == TrainConfig().data  # untouched flags keep defaults
    bc = parser.parse_args(["--dataset", "d", "--workdir", "w", "--loss", "bc", "--action-sigma",
                            "1.5"])  # fmt: skip
    assert config_from_args(bc).bc_action_sigma == 1.5
    assert TrainConfig().bc_action_sigma == 1.0  # the measured default (docs/stall.md)
    wrong = parser.parse_args(["--dataset", "d", "--workdir", "w", "--action-sigma", "1"])
    with pytest.raises(ValueError, match="--loss bc only"):
        config_from_args(wrong)  # the default loss is hl_gauss
    wrong = parser.parse_args(["--dataset", "d", "--workdir", "w", "--loss", "bc",
                               "--conservative-sigma", "1"])  # fmt: skip
    with pytest.raises(ValueError, match="bc has no regulariser"):
        config_from_args(wrong)
    td = parser.parse_args(["--dataset", "d", "--workdir", "w", "--td-sigma", "0.5"])
    assert (config_from_args(td).td_sigma, TrainConfig().td_sigma) == (0.5, 0.0)
    wrong = parser.parse_args(["--dataset", "d", "--workdir", "w", "--loss", "bc",
                               "--td-sigma", "1"])  # fmt: skip
    with pytest.raises(ValueError, match="bc has no TD term"):
        config_from_args(wrong)
