"""Stall detection (eval/stalls.py) and the near-twin aliasing count (eval/aliasing.py)."""

import numpy as np

from qtransformer.eval import aliasing, stalls


def test_still_from_by_hand():
    x = np.array([0.0, 1.0, 2.0, 2.0, 2.0])[:, None].repeat(4, 1)
    assert stalls.still_from(x, min_still=2, tol=0.5) == 2
    assert stalls.still_from(x, min_still=3, tol=0.5) is None  # tail of 2 still steps only
    assert stalls.still_from(np.zeros((5, 4)), min_still=3) == 0  # never moved
    moving = np.arange(12.0)[:, None].repeat(4, 1) * 0.01
    assert stalls.still_from(moving, min_still=10, tol=1e-3) is None


def test_aliased_pairs_by_hand():
    states = np.array([[0.0, 0.0], [0.001, 0.0], [0.5, 0.5], [0.5, 0.501], [0.0, 0.0]])
    bins = np.array([[1], [2], [3], [3], [1]])
    groups = np.array(["a", "a", "a", "a", "b"])
    # 0 and 1 are twins with other bins; 2 and 3 twins with the same bin; 4 alone in its group
    np.testing.assert_array_equal(
        aliasing.aliased(states, bins, groups, 0.002), [True, True, False, False, False]
    )
    assert not aliasing.aliased(states, bins, groups, 0.0005).any()


def test_eval_reports_a_stall_of_a_policy_that_never_moves():
    from qtransformer.eval import rollout

    # the "hold still, open" policy that the padded replays taught
    act_still = lambda envs, steps: np.tile([0.0, 0.0, 0.0, -1.0], (len(envs), 1))  # noqa: E731
    original = rollout._make_actor
    rollout._make_actor = lambda policy, seed: act_still
    try:
        report, _ = rollout.rollout_task("random", "pick_place", 2, seed=0, progress=False)
    finally:
        rollout._make_actor = original
    assert report["stalls"]["failed"] == 2 and report["stalls"]["episodes"] == 2
    assert report["stalls"]["by_phase"] == {"approach": 2}
    example = report["stalls"]["examples"][0]
    assert example["step"] == 0 and example["policy_action"] == [0.0, 0.0, 0.0, -1.0]
    assert example["expert_action"][3] == -1.0 and max(map(abs, example["expert_action"][:3])) > 0
