"""Conformance tests over every registered sim task (like dm_control's suite_test)."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # before anything imports mujoco

import numpy as np
import pytest

from qtransformer import sim_envs
from qtransformer.sim_envs import common

TASKS = sim_envs.TASKS


def _rollout(env, policy, max_steps=200):
    time_step, states, rewards = env.reset(), [], []
    states.append(time_step.observation["state"])
    while not time_step.last() and len(states) < max_steps:
        time_step = env.step(policy(time_step))
        states.append(time_step.observation["state"])
        rewards.append(time_step.reward)
    return np.array(states), np.array(rewards), time_step


def test_registry_has_the_three_tasks():
    assert {"lift", "pick_place", "stack"} <= set(TASKS)


@pytest.mark.parametrize("task", TASKS)
def test_reset_step_and_specs(task):
    env = sim_envs.make(task, seed=0)
    spec = env.action_spec()
    assert spec.shape == (4,) and spec.dtype == np.float32
    np.testing.assert_array_equal(spec.minimum, -1.0)
    np.testing.assert_array_equal(spec.maximum, 1.0)
    time_step = env.reset()
    assert time_step.first()
    state = time_step.observation["state"]
    assert state.shape == (common.STATE_SIZE,) and state.dtype == np.float32
    assert set(time_step.observation) == {"state"}
    # the relative vectors are differences of the absolute ones
    np.testing.assert_allclose(state[10:13], state[4:7] - state[0:3], atol=1e-6)
    np.testing.assert_allclose(state[13:16], state[7:10] - state[4:7], atol=1e-6)
    assert state[3] == pytest.approx(1.0, abs=0.01)  # fingers start fully open
    assert env.task.language_instruction
    time_step = env.step(np.zeros(4, np.float32))
    assert time_step.mid() and time_step.reward == 0.0 and time_step.discount == 1.0


@pytest.mark.parametrize("task", TASKS)
def test_idle_episode_truncates_at_time_limit(task):
    env = sim_envs.make(task, seed=1)
    states, rewards, last = _rollout(env, lambda ts: np.zeros(4, np.float32))
    assert len(rewards) == common.TIME_LIMIT_STEPS == 80
    assert last.last() and last.discount == 1.0 and rewards.sum() == 0.0


@pytest.mark.parametrize("task", TASKS)
def test_same_seed_same_trajectory_other_seed_differs(task):
    def run(seed):
        env = sim_envs.make(task, seed=seed)
        policy = sim_envs.expert_policy(env, noise=0.3, seed=seed)
        states, _, _ = _rollout(env, policy)
        return states, env.task.language_instruction

    (a, inst_a), (b, inst_b), (c, _) = run(3), run(3), run(4)
    np.testing.assert_array_equal(a, b)
    assert inst_a == inst_b
    assert a.shape != c.shape or not np.allclose(a, c)
    assert not np.allclose(a[0, 4:10], c[0, 4:10])  # object/target poses come from the seed


@pytest.mark.parametrize("task", TASKS)
def test_expert_solves_task(task):
    successes, lengths = 0, []
    for seed in range(20):
        env = sim_envs.make(task, seed=seed)
        _, rewards, last = _rollout(env, sim_envs.expert_policy(env, seed=seed))
        if rewards.sum() > 0:
            successes += 1
            # sparse: reward 1 exactly once, on the terminal step
            assert rewards[-1] == 1.0 and rewards[:-1].sum() == 0.0 and last.discount == 0.0
        lengths.append(len(rewards))
    assert successes >= 18, f"{task}: expert solved {successes}/20"
    assert np.mean(lengths) <= 40


def test_noise_and_early_release_make_the_expert_fail():
    def rate(**kw):
        wins = 0
        for seed in range(10):
            env = sim_envs.make("pick_place", seed=seed)
            _, rewards, _ = _rollout(env, sim_envs.expert_policy(env, seed=seed, **kw))
            wins += rewards.sum() > 0
        return wins

    assert rate(early_release_prob=1.0) <= 2
    assert rate(noise=0.8) <= 6
    assert rate(random_action_prob=1.0) <= 2


@pytest.mark.parametrize("task", TASKS)
def test_out_of_bounds_actions_are_clipped_and_nan_rejected(task):
    big, unit = sim_envs.make(task, seed=5), sim_envs.make(task, seed=5)
    big.reset(), unit.reset()
    for _ in range(3):
        a = big.step(np.array([7.0, -3.0, 50.0, -9.0], np.float32))
        b = unit.step(np.array([1.0, -1.0, 1.0, -1.0], np.float32))
    np.testing.assert_array_equal(a.observation["state"], b.observation["state"])
    # clipped to the bounds: same mocap target and finger command as the unit action
    np.testing.assert_array_equal(big.physics.data.mocap_pos, unit.physics.data.mocap_pos)
    np.testing.assert_array_equal(big.physics.data.ctrl, [common.FINGER_OPEN] * 2)
    for bad in ([np.nan, 0, 0, 0], [0, 0, np.inf, 0]):
        with pytest.raises(ValueError, match="finite"):
            big.step(np.array(bad, np.float32))
    with pytest.raises(ValueError, match="shape"):
        big.step(np.zeros(3, np.float32))


def test_mocap_moves_max_delta_per_step():
    env = sim_envs.make("lift", seed=0)
    env.reset()
    before = env.physics.data.mocap_pos[0].copy()
    env.step(np.array([0.5, -1.0, 0.0, 0.0], np.float32))
    np.testing.assert_allclose(env.physics.data.mocap_pos[0] - before, [0.015, -0.03, 0.0])


def test_bad_arguments_name_what_is_valid():
    with pytest.raises(ValueError, match="lift, pick_place, stack"):
        sim_envs.make("push")
    with pytest.raises(ValueError, match="image_size"):
        sim_envs.make("lift", image_size=-1)
    with pytest.raises(ValueError, match="seed"):
        sim_envs.make("lift", seed=-3)
    with pytest.raises(ValueError, match="noise"):
        sim_envs.expert_policy(sim_envs.make("lift"), noise=-0.1)


@pytest.mark.parametrize("task", TASKS)
def test_images_render(task):
    env = sim_envs.make(task, seed=0, image_size=32)
    image = env.reset().observation["image"]
    assert image.shape == (32, 32, 3) and image.dtype == np.uint8
    assert image.std() > 5  # not a blank frame
    assert env.observation_spec()["image"].shape == (32, 32, 3)
    frame = sim_envs.render_frame(env, 24)
    assert frame.shape == (24, 24, 3) and frame.dtype == np.uint8


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_write_video(tmp_path, suffix):
    frames = [np.full((32, 32, 3), 20 * i, np.uint8) for i in range(6)]
    path = sim_envs.write_video(frames, tmp_path / f"clip{suffix}", fps=10)
    assert path.stat().st_size > 100
    assert [p.name for p in tmp_path.iterdir()] == [f"clip{suffix}"]  # no temp file left
    with pytest.raises(ValueError, match="no frames"):
        sim_envs.write_video([], tmp_path / "empty.mp4")
    with pytest.raises(ValueError, match=".mp4"):
        sim_envs.write_video(frames, tmp_path / "clip.avi")


def test_render_command_writes_marked_video(tmp_path):
    from qtransformer.commands.cli import main
    from qtransformer.sim_envs import render

    out = tmp_path / "lift.gif"
    assert (
        main(["render", "--task", "lift", "--out", str(out), "--episodes", "1", "--size", "32"])
        == 0
    )
    assert out.stat().st_size > 100
    assert render.render_episodes("lift", tmp_path / "x.gif", episodes=1, size=32) == [True]


def test_tf_agents_py_environment_runs_with_a_driver():
    from tf_agents.drivers import py_driver
    from tf_agents.policies import random_py_policy

    env = sim_envs.to_py_environment("pick_place", seed=0)
    assert env.action_spec().shape == (4,)
    policy = random_py_policy.RandomPyPolicy(env.time_step_spec(), env.action_spec())
    seen = []
    driver = py_driver.PyDriver(env, policy, observers=[seen.append], max_steps=12)
    time_step, _ = driver.run(env.reset())
    assert len(seen) == 12
    assert time_step.observation["state"].shape == (common.STATE_SIZE,)
    assert all(t.action.dtype == np.float32 for t in seen)


def test_sim_speed_reports_rates():
    from qtransformer.sim_envs import bench

    result = bench.sim_speed("lift", steps=200)
    assert result["env_steps_per_s"] > 0 and result["raw_physics_control_steps_per_s"] > 0
    ratio = result["env_steps_per_s"] / result["raw_physics_control_steps_per_s"]
    assert result["ratio"] == pytest.approx(ratio)
    assert result["substeps"] == 10
