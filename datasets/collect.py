"""Record episodes in the MuJoCo sim with the scripted expert as an RLDS dataset.

A Q-Transformer-style mix: a `--demo-fraction` of the episodes (default 0.1) are clean expert
demos (source "expert"); the rest (source "noisy") replay the expert with Gaussian action noise
`--noise` (default 0.4) and, in a fixed proportion by episode index, an extra failure mode:
of every 4 noisy episodes, 2 use noise only, 1 adds random_action_prob=0.3 (a uniformly random
action instead of the expert's) and 1 adds early_release_prob=0.5 (the gripper opens early), so
most noisy episodes fail. Episode i runs task tasks[i % len(tasks)] with seed (seed, i), so the
dataset is the same for any --workers. Which episodes are demos is drawn from --seed.

  qtransformer collect --task pick_place --episodes 200 --out data/pick_place
  qtransformer collect --task all --episodes 300 --image-size 64 --workers 2 --out data/all
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path

import numpy as np

from qtransformer.datasets.episode import Episode

# (random_action_prob, early_release_prob) cycled over the noisy episodes, see the docstring.
FAILURE_MODES = ((0.0, 0.0), (0.0, 0.0), (0.3, 0.0), (0.0, 0.5))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", default="pick_place", help="task, comma list, or 'all'")
    parser.add_argument("--episodes", type=int, default=100, help="episodes to record")
    parser.add_argument("--out", required=True, help="output RLDS dataset directory")
    parser.add_argument("--demo-fraction", type=float, default=0.1, help="clean expert share")
    parser.add_argument("--noise", type=float, default=0.4, help="action noise of the rest")
    parser.add_argument("--image-size", type=int, default=None, help="record camera frames")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1, help="parallel recording processes")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def episode_plan(tasks, episodes: int, demo_fraction: float, noise: float, seed: int) -> list:
    """One (task, seed, source, noise, random_action_prob, early_release_prob) per episode."""
    if not 0.0 <= demo_fraction <= 1.0:
        raise ValueError(f"--demo-fraction must be in [0, 1], got {demo_fraction}")
    if episodes < 1:
        raise ValueError(f"--episodes must be >= 1, got {episodes}")
    demos = int(round(demo_fraction * episodes))
    is_demo = np.zeros(episodes, bool)
    is_demo[np.random.default_rng(seed).permutation(episodes)[:demos]] = True
    plan, noisy = [], 0
    for i in range(episodes):
        ep_seed = int(np.random.SeedSequence([seed, i]).generate_state(1)[0])
        if is_demo[i]:
            plan.append((tasks[i % len(tasks)], ep_seed, "expert", 0.0, 0.0, 0.0))
        else:
            random_p, release_p = FAILURE_MODES[noisy % len(FAILURE_MODES)]
            plan.append((tasks[i % len(tasks)], ep_seed, "noisy", noise, random_p, release_p))
            noisy += 1
    return plan


def record_episode(item, image_size: int | None = None) -> Episode:
    """Run one planned episode in the sim and return it."""
    from qtransformer import sim_envs

    task, ep_seed, source, noise, random_p, release_p = item
    env = sim_envs.make(task, seed=ep_seed, image_size=image_size)
    policy = sim_envs.expert_policy(
        env, noise=noise, random_action_prob=random_p, early_release_prob=release_p, seed=ep_seed
    )
    ts = env.reset()
    states, images, actions, rewards = [ts.observation["state"]], [], [], []
    if image_size:
        images.append(ts.observation["image"])
    while not ts.last():
        action = np.asarray(policy(ts), np.float32)
        ts = env.step(action)
        actions.append(action)
        rewards.append(float(ts.reward or 0.0))
        states.append(ts.observation["state"])
        if image_size:
            images.append(ts.observation["image"])
    terminal = float(ts.discount) == 0.0
    return Episode(
        states=np.stack(states),
        actions=np.stack(actions),
        rewards=np.asarray(rewards),
        terminal=terminal,
        instruction=env.task.language_instruction,
        task=task,
        source=source,
        images=np.stack(images) if image_size else None,
        success=terminal or max(rewards) > 0,
    )


def _record(args):
    return record_episode(*args)


def parse_tasks(text) -> tuple[str, ...]:
    from qtransformer import sim_envs

    names = [text] if isinstance(text, str) else list(text)
    names = [n.strip() for name in names for n in name.split(",") if n.strip()]
    if names == ["all"]:
        return tuple(sim_envs.TASKS)
    unknown = [n for n in names if n not in sim_envs.TASKS]
    if unknown or not names:
        raise ValueError(
            f"--task: unknown task(s) {unknown}; valid: {', '.join(sim_envs.TASKS)}, all"
        )
    return tuple(names)


def collect_dataset(
    out_dir,
    tasks=("pick_place",),
    episodes=100,
    demo_fraction=0.1,
    noise=0.4,
    image_size=None,
    seed=0,
    workers=1,
    progress=True,
    overwrite=False,
    summary: dict | None = None,
) -> Path:
    """Record `episodes` sim episodes (mix in the module docstring) to an RLDS dataset.

    `summary`, if given, is filled with {"episodes", "successes": {source: [successes, n]}}.
    """
    import multiprocessing

    from tqdm import tqdm

    from qtransformer.datasets import rlds_io

    tasks = parse_tasks(tasks)
    rlds_io.check_output_dir(out_dir, overwrite)
    plan = episode_plan(tasks, episodes, demo_fraction, noise, seed)
    from qtransformer import sim_envs

    spec = sim_envs.make(tasks[0], seed=seed).action_spec()  # same spec for every task
    low = np.broadcast_to(spec.minimum, spec.shape).astype(np.float32)
    high = np.broadcast_to(spec.maximum, spec.shape).astype(np.float32)
    counts = collections.defaultdict(lambda: [0, 0])
    jobs = [(item, image_size) for item in plan]
    pool = multiprocessing.get_context("spawn").Pool(workers) if workers > 1 else None
    try:
        stream = pool.imap(_record, jobs) if pool else map(_record, jobs)
        bar = tqdm(stream, total=len(jobs), desc="collect", unit="ep", disable=not progress)

        def tally():
            for episode in bar:
                counts[episode.source][0] += int(episode.success)
                counts[episode.source][1] += 1
                bar.set_postfix(success=sum(c[0] for c in counts.values()))
                yield episode

        path = rlds_io.write_dataset(
            out_dir,
            tally(),
            action_low=low,
            action_high=high,
            overwrite=overwrite,
            description=f"sim episodes of {', '.join(tasks)} (scripted expert, noise {noise})",
        )
    finally:
        if pool:
            pool.terminate()
    if summary is not None:
        summary.update(episodes=episodes, successes={k: list(v) for k, v in counts.items()})
    return path


def run(args: argparse.Namespace) -> int:
    summary: dict = {}
    path = collect_dataset(
        args.out,
        tasks=args.task,
        episodes=args.episodes,
        demo_fraction=args.demo_fraction,
        noise=args.noise,
        image_size=args.image_size,
        seed=args.seed,
        workers=args.workers,
        progress=not args.no_progress,
        overwrite=args.overwrite,
        summary=summary,
    )
    print(f"recorded {summary['episodes']} episodes -> {path}")
    for source, (wins, n) in sorted(summary["successes"].items()):
        print(f"  {source}: {wins}/{n} successful")
    return 0
