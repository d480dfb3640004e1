"""`qtransformer collect`: a tiny sim recording reads back with the same episodes and arrays."""

from __future__ import annotations

import numpy as np
import pytest

from qtransformer.commands.cli import main
from qtransformer.datasets import load_dataset, read_episodes
from qtransformer.datasets.collect import collect_dataset, episode_plan, record_episode
from qtransformer.datasets.replay import episode_seed, record_demo, replay_actions


def test_collect_round_trip_matches_direct_recording(tmp_path):
    summary: dict = {}
    path = collect_dataset(
        tmp_path / "ds",
        tasks="lift,pick_place",
        episodes=4,
        demo_fraction=0.25,
        noise=0.5,
        seed=3,
        progress=False,
        image_size=16,
        summary=summary,
        replay="closed_loop",
    )
    episodes, meta = load_dataset(path)
    assert meta.num_episodes == 4 and int(episodes.cardinality()) == 4
    assert meta.tasks == ["lift", "pick_place"] and meta.image_shape == (16, 16, 3)
    assert meta.action_low.tolist() == [-1] * 4 and meta.action_high.tolist() == [1] * 4
    back = read_episodes(path)
    plan = episode_plan(("lift", "pick_place"), 4, 0.25, 0.5, 3)
    assert [b.source for b in back] == [p[2] for p in plan]
    assert sorted(p[2] for p in plan) == ["expert", "noisy", "noisy", "noisy"]
    assert sum(n for _, n in summary["successes"].values()) == 4
    for item, got in zip(plan, back, strict=True):
        want = record_episode(item, image_size=16)  # same seed -> same episode
        assert got.task == item[0] and got.instruction == want.instruction
        np.testing.assert_array_equal(got.states, want.states)
        np.testing.assert_array_equal(got.actions, want.actions)
        np.testing.assert_array_equal(got.rewards, want.rewards)
        np.testing.assert_array_equal(got.images, want.images)
        assert got.terminal == want.terminal and got.success == want.success
        assert got.states.shape[0] == got.length + 1


def test_collect_cli_rejects_bad_task_and_existing_output(tmp_path, capsys):
    assert (
        main(["collect", "--task", "juggle", "--episodes", "1", "--out", str(tmp_path / "x")]) == 2
    )
    assert "juggle" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f").write_text("keep")
    assert (
        main(["collect", "--episodes", "1", "--out", str(tmp_path / "full"), "--no-progress"]) == 2
    )
    assert (tmp_path / "full" / "f").read_text() == "keep"


def test_plan_mix_is_fixed():
    plan = episode_plan(("lift",), 20, 0.1, 0.5, 0)
    assert sum(p[2] == "expert" for p in plan) == 2
    noisy = [p for p in plan if p[2] == "noisy"]
    assert all(p[3] == 0.5 for p in noisy)
    # of each 4 noisy episodes: 2 noise only, 1 random actions, 1 early release
    # 18 noisy episodes: indices 2, 6, 10, 14 random; 3, 7, 11, 15 early release
    assert sum(p[4] > 0 for p in noisy) == 4 and sum(p[5] > 0 for p in noisy) == 4
    with pytest.raises(ValueError, match="demo-fraction"):
        episode_plan(("lift",), 5, 1.5, 0.5, 0)


def test_open_loop_replays_start_from_their_demo_and_replay_its_actions(tmp_path):
    path = collect_dataset(
        tmp_path / "ol", tasks="pick_place", episodes=6, demo_fraction=1 / 3, noise=0.2,
        seed=5, progress=False,
    )  # fmt: skip
    back = read_episodes(path)
    _, meta = load_dataset(path)
    assert meta.protocol == {
        "replay": "open_loop", "demo_fraction": 1 / 3, "noise": 0.2, "seed": 5,
        "expert_version": 3, "replay_tail": "truncate",
    }  # fmt: skip
    assert [b.source for b in back] == ["expert"] * 2 + ["replay"] * 4
    demos = back[:2]
    for d, demo in enumerate(demos):  # the clean expert on the demo's own env seed
        direct = record_demo("pick_place", episode_seed(5, d))
        np.testing.assert_array_equal(demo.actions, direct.actions)
        assert demo.success
    for r, replay in enumerate(back[2:]):
        demo = demos[r % 2]
        # Same scene: the replay starts in the demo's initial state.
        np.testing.assert_array_equal(replay.states[0], demo.states[0])
        # Open loop: action t is demo action t + N(0, 0.2^2) from the replay's own noise seed,
        # clipped; the replay ends (a truncation) when the demo's actions run out.
        act = replay_actions(demo.actions, 0.2, episode_seed(5, 1, r))
        want = np.stack([act(t, None) for t in range(len(replay.actions))]).astype(np.float32)
        np.testing.assert_allclose(replay.actions, want, atol=1e-6)
        assert len(replay.actions) <= len(demo.actions)
        assert replay.success or not replay.terminal  # a failed replay is truncated
        assert 0 < np.abs(replay.actions - demo.actions[: len(replay.actions)]).mean() < 0.3


def test_replay_tail_truncate_ends_and_hold_pads_with_hold_still():
    demo = np.array([[0.5, -0.5, 0.0, 0.3], [1.0, 0.0, 0.0, -1.0]], np.float32)
    truncate = replay_actions(demo, 0.0, 0)
    assert truncate(2, None) is None
    hold = replay_actions(demo, 0.0, 0, tail="hold")
    np.testing.assert_array_equal(hold(1, None), demo[1])
    np.testing.assert_array_equal(hold(2, None), [0.0, 0.0, 0.0, -1.0])  # last gripper command
    np.testing.assert_array_equal(hold(50, None), [0.0, 0.0, 0.0, -1.0])
    with pytest.raises(ValueError, match="replay-tail"):
        replay_actions(demo, 0.0, 0, tail="pad")


def test_noise_zero_replay_reproduces_the_demo():
    demo = record_demo("pick_place", 11)
    from qtransformer.datasets.replay import record_replay

    replay = record_replay("pick_place", 11, demo.actions, 0.0, 1)
    np.testing.assert_allclose(replay.states[: len(demo.states)], demo.states, atol=1e-5)
    assert replay.success
