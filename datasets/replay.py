"""The papers' data protocol: clean demos, then open-loop noisy replays of their actions.

Q-Transformer (Chebotar et al. 2023) and Stop Regressing (Farebrother et al. 2024, §4.3.3:
40k demos replayed into 500k episodes) train on a few clean demos plus many replays of those
demos with sampled action noise, which mimic failed autonomous rollouts. A replay here:

  * starts from the demo's own initial state (same env seed, so the same scene);
  * executes the demo's recorded actions a_t plus N(0, noise^2) per dimension, clipped to
    [-1, 1], open loop: nothing corrects the drift;
  * ends when the recorded actions run out (`tail="truncate"`, the default): a truncation, not
    a terminal step, so the learner bootstraps from the last state instead of learning that the
    state is worth 0. `tail="hold"` (our protocol before expert v2) kept acting with zero motion
    and the demo's last gripper command until success or the time limit; on the demo's data
    that padding made about 70% of all transitions "hold still", each with return 0
    (docs/data.md, "The data protocol");
  * sparse 0/1 reward as in every episode; replays that happen to succeed keep their reward.

Replay r of a dataset (r = 0, 1, ...) replays demo r % num_demos with noise seed
SeedSequence([seed, 1, r]); demo d runs the clean expert on env seed SeedSequence([seed, d]).
So a dataset is a pure function of (task, num_demos, replays, noise, tail, seed).

Measured replay success on pick_place (`python -m qtransformer.datasets.replay --task
pick_place`, 40 demos, 1 replay each) is in docs/data.md, "The data protocol".
"""

from __future__ import annotations

import argparse

import numpy as np

from qtransformer.datasets.episode import Episode


def episode_seed(seed: int, *path: int) -> int:
    """A 32-bit seed for one episode from the dataset seed and a path of integers."""
    return int(np.random.SeedSequence([seed, *path]).generate_state(1)[0])


def run_actions(env, task: str, actions_fn, source: str) -> Episode:
    """Run one episode of `env`, the action at step t being `actions_fn(t, time_step)`."""
    ts = env.reset()
    has_image = "image" in ts.observation
    states, images, actions, rewards = [ts.observation["state"]], [], [], []
    if has_image:
        images.append(ts.observation["image"])
    t = 0
    while not ts.last():
        action = actions_fn(t, ts)
        if action is None:  # nothing left to do: the episode ends here as a truncation
            break
        action = np.asarray(action, np.float32)
        ts = env.step(action)
        actions.append(action)
        rewards.append(float(ts.reward or 0.0))
        states.append(ts.observation["state"])
        if has_image:
            images.append(ts.observation["image"])
        t += 1
    terminal = float(ts.discount) == 0.0
    return Episode(
        states=np.stack(states),
        actions=np.stack(actions),
        rewards=np.asarray(rewards),
        terminal=terminal,
        instruction=env.task.language_instruction,
        task=task,
        source=source,
        images=np.stack(images) if has_image else None,
        success=terminal or max(rewards) > 0,
    )


def record_demo(task: str, env_seed: int, env_kwargs: dict | None = None) -> Episode:
    """The clean scripted expert on env seed `env_seed` (source "expert")."""
    from qtransformer import sim_envs

    env = sim_envs.make(task, seed=env_seed, **(env_kwargs or {}))
    policy = sim_envs.expert_policy(env, seed=env_seed)
    return run_actions(env, task, lambda t, ts: policy(ts), "expert")


TAILS = ("truncate", "hold")


def replay_actions(demo_actions: np.ndarray, noise: float, noise_seed: int, tail="truncate"):
    """`actions_fn(t, ts)` replaying `demo_actions` [T, 4] open loop with Gaussian noise.

    Past the end it returns None (`tail="truncate"`: the episode ends) or the hold-still action
    (`tail="hold"`: zero motion, the demo's last gripper command).
    """
    if not np.isfinite(noise) or noise < 0:
        raise ValueError(f"--noise must be a finite number >= 0, got {noise!r}")
    if tail not in TAILS:
        raise ValueError(f"--replay-tail must be one of {', '.join(TAILS)}, got {tail!r}")
    rng = np.random.default_rng(noise_seed)
    hold = np.zeros(demo_actions.shape[1], np.float32)
    hold[-1] = demo_actions[-1, -1]  # zero motion, the demo's last gripper command

    def act(t, ts):
        del ts  # open loop: the observation is never read
        if t >= len(demo_actions):
            return hold if tail == "hold" else None
        noisy = demo_actions[t] + rng.normal(0.0, noise, size=demo_actions.shape[1])
        return np.clip(noisy, -1.0, 1.0)

    return act


def record_replay(
    task: str, env_seed: int, demo_actions: np.ndarray, noise: float, noise_seed: int,
    env_kwargs: dict | None = None, tail: str = "truncate",
) -> Episode:  # fmt: skip
    """One open-loop noisy replay of a demo from the demo's initial state (source "replay")."""
    from qtransformer import sim_envs

    env = sim_envs.make(task, seed=env_seed, **(env_kwargs or {}))
    act = replay_actions(np.asarray(demo_actions, np.float32), noise, noise_seed, tail)
    return run_actions(env, task, act, "replay")


def replay_success_table(
    task: str, noises, demos: int = 40, seed: int = 0, tail: str = "truncate"
) -> dict:
    """{noise: (successes, demos)}: one open-loop replay of each of `demos` clean demos."""
    table = {}
    demo_eps = [record_demo(task, episode_seed(seed, d)) for d in range(demos)]
    for noise in noises:
        wins = sum(
            record_replay(
                task, episode_seed(seed, d), ep.actions, noise, episode_seed(seed, 1, d), tail=tail
            ).success
            for d, ep in enumerate(demo_eps)
        )  # fmt: skip
        table[float(noise)] = (int(wins), demos)
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="open-loop replay success vs noise")
    parser.add_argument("--task", default="pick_place")
    parser.add_argument("--noises", default="0.05,0.1,0.2,0.3,0.4,0.5")
    parser.add_argument("--demos", type=int, default=40)
    parser.add_argument("--tail", choices=TAILS, default="truncate")
    args = parser.parse_args(argv)
    noises = [float(x) for x in args.noises.split(",")]
    table = replay_success_table(args.task, noises, args.demos, tail=args.tail)
    print(f"{args.task}: open-loop replay success, {args.demos} demos, 1 replay each, {args.tail}")
    for noise, (wins, n) in table.items():
        print(f"  noise {noise:<5}: {wins:>3}/{n} ({wins / n:.0%})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
