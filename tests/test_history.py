"""Observation history (`train --history W`): windows in the data, the network, the policy
state (in process and exported), rollouts, and the CLI (train, eval --env, diagnose)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf
from test_eval_external import TinyReach  # noqa: F401 - registers gymnasium:QtTinyReach-v0
from tf_agents.policies import policy_saver
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import time_step as ts

from qtransformer.datasets import Episode, write_dataset
from qtransformer.model import history
from qtransformer.model.agent import QTransformerAgent
from qtransformer.training.config import DataConfig, TrainConfig
from qtransformer.training.data import make_transition_dataset

SMALL = TrainConfig(xla_decoder=False).replace(
    embed_dim=16, num_layers=1, num_heads=2, action_bins=5, value_bins=11, head_rank=4
)


def _agent(observation_spec, config, action_dims=2, words=("pick", "cube")):
    tf.keras.utils.set_random_seed(1)
    action = tensor_spec.BoundedTensorSpec([action_dims], tf.float32, -1.0, 1.0, name="action")
    return QTransformerAgent(ts.time_step_spec(observation_spec), action, config, list(words))


def _obs_spec(state=5, image=None):
    spec = {
        "state": tf.TensorSpec([state], tf.float32, name="state"),
        "instruction": tf.TensorSpec([], tf.string, name="instruction"),
    }
    if image:
        spec["image"] = tf.TensorSpec([image, image, 3], tf.uint8, name="image")
    return spec


def test_config_history_defaults_to_1_and_is_range_checked():
    old = TrainConfig.from_dict({"data": {"n_step": 3}, "loss": "bc"})  # a config from before
    assert old.data.history == 1
    assert TrainConfig().replace(history=4).data.history == 4
    with pytest.raises(ValueError, match="data.history"):
        TrainConfig.from_dict({"data": {"history": 0}})


def test_episode_windows_repeat_the_first_step_at_the_start():
    x = tf.constant([10, 11, 12, 13])
    expected = [[10, 10, 10], [10, 10, 11], [10, 11, 12], [11, 12, 13]]
    np.testing.assert_array_equal(history.episode_windows(x, 3), expected)


def test_advance_shifts_or_restarts_each_row():
    window = tf.constant([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])[..., None]  # [B=2, W=3, 1]
    new = history.advance(window, tf.constant([[7.0], [8.0]]), tf.constant([False, True]))
    np.testing.assert_array_equal(new[..., 0], [[2, 3, 7], [8, 8, 8]])


@pytest.fixture(scope="module")
def image_dataset(tmp_path_factory):
    """Two episodes (5 and 3 transitions) with distinct random states, images and actions."""
    rng = np.random.default_rng(0)
    episodes = [
        Episode(
            states=rng.normal(size=(t + 1, 2)),
            actions=rng.uniform(-1, 1, (t, 2)),
            rewards=[0.0] * (t - 1) + [1.0],
            terminal=True,
            instruction=f"episode {i}",
            task="t",
            source="test",
            images=rng.integers(0, 255, (t + 1, 8, 8, 3)),
        )
        for i, t in enumerate((5, 3))
    ]
    path = write_dataset(
        tmp_path_factory.mktemp("hist") / "ds", episodes, action_low=[-1, -1], action_high=[1, 1]
    )
    return path, episodes


def test_pipeline_windows_match_numpy_windows(image_dataset):
    path, episodes = image_dataset
    w, n = 3, 2
    config = DataConfig(action_bins=5, n_step=n, batch_size=1, history=w)
    ds, _ = make_transition_dataset(path, config, repeat=False, shuffle=False)
    rows = list(ds)
    assert len(rows) == 5 + 3
    for row in rows:
        i = int(row["observation"]["instruction"].numpy()[0].decode().split()[-1])
        ep = episodes[i]
        t = int(np.argmin(np.abs(ep.actions - row["action"].numpy()[0]).sum(1)))  # row's step
        k = min(n, ep.length - t)

        def window(end):  # by hand: steps end-W+1..end, indices < 0 -> step 0
            return [max(end - w + 1 + j, 0) for j in range(w)]

        for key, source in (("state", ep.states), ("image", ep.images)):
            got = row["observation"][key].numpy()[0]
            assert got.shape == (w, *source.shape[1:])
            np.testing.assert_array_equal(got, source[window(t)])
            np.testing.assert_array_equal(row["next_observation"][key].numpy()[0],
                                          source[window(t + k)])  # fmt: skip
    # Start padding spelled out: the first transition's window is o_0 three times.
    first = [r for r in rows if r["observation"]["instruction"].numpy()[0] == b"episode 0"][0]
    np.testing.assert_array_equal(first["observation"]["state"].numpy()[0],
                                  episodes[0].states[[0, 0, 0]])  # fmt: skip


def test_history_1_batches_have_no_window_axis(image_dataset):
    ds, _ = make_transition_dataset(image_dataset[0], DataConfig(batch_size=2), repeat=False)
    batch = next(iter(ds))
    assert batch["observation"]["state"].shape == (2, 2)
    assert batch["next_observation"]["image"].shape == (2, 8, 8, 3)


def test_windowed_network_shapes_first_logits_and_cached_decoding():
    agent = _agent(_obs_spec(image=16), SMALL.replace(history=3))
    net, policy = agent.q_network, agent.policy
    rng = np.random.default_rng(2)
    obs = {
        "state": tf.constant(rng.normal(size=(4, 3, 5)), tf.float32),
        "image": tf.constant(rng.integers(0, 255, (4, 3, 16, 16, 3)), tf.uint8),
        "instruction": tf.constant(["pick", "cube", "pick cube", "?"]),
    }
    bins = policy.greedy_bins(obs)  # cached decoding, W observation tokens prefilled
    logits = net((obs, bins))[0]
    assert logits.shape == (4, 2, 5, 11)
    np.testing.assert_allclose(net.first_logits(obs), logits[:, 0], atol=1e-5)
    q = agent.q_values(logits)
    np.testing.assert_array_equal(tf.argmax(q, -1, output_type=tf.int32), bins)
    # The window matters: the same current step with another past gives other logits.
    older = dict(obs, state=tf.concat([obs["state"][:, :1] + 1.0, obs["state"][:, 1:]], 1))
    assert not np.allclose(net((older, bins))[0], logits)


def test_windowed_image_encoder_is_the_per_frame_encoder():
    agent = _agent(_obs_spec(image=16), SMALL.replace(history=2))
    encoder = agent.q_network._image  # noqa: SLF001
    frames = tf.constant(np.random.default_rng(0).integers(0, 255, (3, 2, 16, 16, 3)), tf.uint8)
    cond = tf.random.normal([3, 16])
    window = encoder(frames, cond)
    assert window.shape == (3, 2, 16)
    for j in range(2):
        np.testing.assert_allclose(window[:, j], encoder(frames[:, j], cond), atol=1e-5)


def test_policy_state_is_the_window_and_restarts_per_row_at_first():
    policy = _agent(_obs_spec(), SMALL.replace(history=3)).policy
    assert policy.policy_state_spec["window"]["state"].shape == (3, 5)
    state = policy.get_initial_state(2)
    rng = np.random.default_rng(3)
    seen = [[], []]  # each row's episode so far, by hand
    for step in range(5):
        x = rng.normal(size=(2, 5)).astype(np.float32)
        first = [step == 0, step in (0, 3)]  # row 1 starts a new episode at step 3
        for row in range(2):
            seen[row] = [x[row]] if first[row] else seen[row] + [x[row]]
        step_type = tf.constant([0 if f else 1 for f in first], tf.int32)
        obs = {"state": tf.constant(x), "instruction": tf.constant(["pick", "cube"])}
        time_step = ts.TimeStep(step_type, tf.zeros([2]), tf.ones([2]), obs)
        out = policy.action(time_step, state)
        state = out.state
        expected = np.stack([np.stack(([s[0]] * 3 + s)[-3:]) for s in seen])  # start padded
        np.testing.assert_allclose(state["window"]["state"], expected)
        bins = policy.greedy_bins(dict(obs, state=tf.constant(expected)))
        np.testing.assert_allclose(out.action, bins.numpy() / 4 * 2 - 1, atol=1e-6)


@pytest.fixture(scope="module")
def sim_policy(tmp_path_factory):
    """An untrained W = 3 policy on pick_place's observation (XLA decoder) and its export."""
    from qtransformer import sim_envs
    from qtransformer.model.network import word_vocabulary

    env = sim_envs.make("pick_place", seed=0)
    spec = _obs_spec(state=env.observation_spec()["state"].shape[0])
    config = SMALL.replace(history=3, xla_decoder=True)
    tf.keras.utils.set_random_seed(3)  # a fixed initialisation, whatever ran before
    agent = _agent(spec, config, 4, word_vocabulary([env.task.language_instruction]))
    path = tmp_path_factory.mktemp("policy") / "policy"
    policy_saver.PolicySaver(agent.policy, batch_size=None).save(str(path))
    return agent.policy, path


def _time_step(steps, instructions):
    obs = {
        "state": tf.constant(np.stack([s.observation["state"] for s in steps]), tf.float32),
        "instruction": tf.constant(instructions),
    }
    kinds = tf.constant([int(s.step_type) for s in steps], tf.int32)
    return ts.TimeStep(kinds, tf.zeros([len(steps)]), tf.ones([len(steps)]), obs)


def test_exported_policy_matches_in_process_over_a_whole_episode(sim_policy):
    from qtransformer import sim_envs

    policy, path = sim_policy
    loaded = tf.saved_model.load(str(path))  # no class of ours needed
    env = sim_envs.make("pick_place", seed=5)
    text = [env.task.language_instruction]
    act = tf.function(policy.action)  # traced once, as eval's actor does
    step, ours, actions, windows = env.reset(), policy.get_initial_state(1), [], []
    theirs = loaded.get_initial_state(batch_size=1)
    while True:
        time_step = _time_step([step], text)
        a, b = act(time_step, ours), loaded.action(time_step, theirs)
        ours, theirs = a.state, b.state
        np.testing.assert_allclose(b.action, a.action, atol=1e-6)
        np.testing.assert_array_equal(b.state["window"]["state"], a.state["window"]["state"])
        actions.append(a.action.numpy()[0])
        windows.append(a.state["window"]["state"].numpy()[0])
        if step.last():
            break
        step = env.step(a.action.numpy()[0])
    # a real comparison: the episode ran on and the window moved with it
    assert len(actions) > 10 and len(np.unique(np.round(windows, 5), axis=0)) > 1


def test_batched_actor_keeps_each_slots_window_like_batch_1(sim_policy):
    """tf_policy_actor over 2 env slots (slot 1 restarts mid-way) = two batch-1 actors."""
    from qtransformer import sim_envs
    from qtransformer.eval.rollout import evaluate, tf_policy_actor

    loaded = tf.saved_model.load(str(sim_policy[1]))
    instructions = lambda envs: [e.task.language_instruction for e in envs]  # noqa: E731
    batched = tf_policy_actor(loaded, instructions)
    singles = [tf_policy_actor(loaded, instructions) for _ in range(2)]
    pairs = [[sim_envs.make("pick_place", seed=s) for _ in range(2)] for s in (1, 2)]
    steps = [[env.reset() for env in pair] for pair in pairs]  # [slot][batched, single]
    for t in range(8):
        if t == 4:  # slot 1 starts its next episode: a FIRST step resets its window only
            steps[1] = [env.reset() for env in pairs[1]]
        together = batched([p[0] for p in pairs], [s[0] for s in steps])
        for slot in range(2):
            alone = singles[slot]([pairs[slot][1]], [steps[slot][1]])
            np.testing.assert_allclose(together[slot], alone[0], atol=1e-6)
            steps[slot] = [env.step(together[slot]) for env in pairs[slot]]
    # And the sim evaluation runs it, a slot taking a new episode when its first one ends.
    report = evaluate(loaded, "pick_place", 3, seed=3, batch_size=2, progress=False)
    assert report["episodes"] == 3 and report["batch_size"] == 2


@pytest.fixture(scope="module")
def history_run(tmp_path_factory):
    """`qtransformer train --history 2` on a tiny dataset of TinyReach's shape (S=2, D=1)."""
    from qtransformer.commands.cli import main

    root = tmp_path_factory.mktemp("run")
    rng = np.random.default_rng(0)
    episodes = [
        Episode(
            states=rng.uniform(-1, 1, (6, 2)),
            actions=rng.uniform(-1, 1, (5, 1)),
            rewards=[0, 0, 0, 0, float(i % 2)],
            terminal=bool(i % 2),
            instruction="reach",
            task="tiny",
            source="test",
        )
        for i in range(6)
    ]
    data = write_dataset(root / "data", episodes, action_low=[-1], action_high=[1])
    argv = ["train", "--dataset", str(data), "--workdir", str(root / "work"), "--history", "2",
            "--steps", "4", "--checkpoint-every", "4", "--batch-size", "8", "--action-bins", "5",
            "--value-bins", "11", "--embed-dim", "16", "--layers", "1", "--heads", "2",
            "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    return data, root / "work", argv


def test_train_history_2_records_it_and_refuses_another_window(history_run):
    from qtransformer.commands.cli import main

    data, work, argv = history_run
    assert json.loads((work / "config.json").read_text())["data"]["history"] == 2
    loaded = tf.saved_model.load(str(work / "policy"))
    assert loaded.get_initial_state(batch_size=3)["window"]["state"].shape == (3, 2, 2)
    again = [a if a != "2" or argv[i - 1] != "--history" else "3" for i, a in enumerate(argv)]
    assert main(again) == 2  # another W: another model shape in the same workdir


def test_eval_env_and_diagnose_on_a_history_run(history_run, tmp_path, capsys):
    from qtransformer.commands.cli import main

    data, work, _ = history_run
    report_path = tmp_path / "r.json"
    code = main(
        ["eval", "--policy", str(work / "policy"), "--env", "gymnasium:QtTinyReach-v0",
         "--episodes", "3", "--batch-size", "2", "--instruction", "reach",
         "--report", str(report_path), "--no-progress"]
    )  # fmt: skip
    assert code == 0 and json.loads(report_path.read_text())["episodes"] == 3
    out = tmp_path / "diag.json"
    argv = ["diagnose", "--workdir", str(work), "--dataset", str(data), "--episodes", "2"]
    assert main(argv + ["--k", "2", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["steps"] == 2 * 5 and report["checkpoint_step"] == 4


def test_two_workers_train_with_history(tmp_path):
    """`train --strategy multi_worker` (2 workers on 127.0.0.1) reads windowed shards."""
    from test_multi_worker import ENV, _finish, _result, _train_argv
    from test_train import TINY, toy_dataset

    from qtransformer.training.cluster import launch_local_workers
    from qtransformer.training.data import distributed_transition_dataset

    data = toy_dataset(tmp_path / "data", episodes=4, action_dim=1)
    config = TINY.replace(history=2, checkpoint_every=2)
    batch, _ = next(iter(distributed_transition_dataset(tf.distribute.get_strategy(), data,
                                                        config.data)))  # fmt: skip
    assert batch["observation"]["state"].shape == (16, 2, 3)
    assert batch["next_observation"]["state"].shape == (16, 2, 3)
    (tmp_path / "config.json").write_text(config.to_json())
    argv = _train_argv(data, tmp_path / "run", tmp_path / "config.json", 2)
    logs = _finish(launch_local_workers(argv, 2, ENV, tmp_path / "logs"), tmp_path / "logs")
    assert _result(logs[0])["step"] == _result(logs[1])["step"] == 2
    loaded = tf.saved_model.load(str(tmp_path / "run" / "policy"))
    assert loaded.get_initial_state(batch_size=1)["window"]["state"].shape == (1, 2, 3)
