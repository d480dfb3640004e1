"""Record episodes in the MuJoCo sim with the scripted expert as an RLDS dataset.

Two data protocols (`--replay`, recorded in metadata.json "protocol" and in the experiment's
results):

open_loop (default; the papers' protocol, see `qtransformer.datasets.replay`): a
  `--demo-fraction` of the episodes (default 1/12, about the papers' 8%) are clean expert demos
  (source "expert"); every other episode (source "replay") replays one demo's recorded actions
  from the demo's initial state with Gaussian noise `--noise` (default 0.3), open loop, and
  ends when those actions run out (`--replay-tail truncate`; `hold` pads with hold-still steps
  to the time limit, as before expert v2). At noise 0.3 about 12% of the replays succeed on
  pick_place (5/40 with truncate, `python -m qtransformer.datasets.replay`), so most episodes
  fail.

closed_loop (the older, easier alternative): the rest (source "noisy") run the expert itself
  with action noise, so every state is labelled with the expert's corrective action; in a fixed
  proportion by episode index it adds an extra failure mode: of every 4 noisy episodes, 2 use
  noise only, 1 adds random_action_prob=0.3 and 1 adds early_release_prob=0.5. Episode i runs
  task tasks[i % len(tasks)] with seed (seed, i). Which episodes are demos is drawn from --seed.

Either way the dataset is the same for any --workers.

  qtransformer collect --task pick_place --episodes 240 --out data/pick_place
  qtransformer collect --task pick_place --replay closed_loop --episodes 200 --out data/cl
  qtransformer collect --task all --episodes 300 --image-size 64 --workers 2 --out data/all
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path

import numpy as np

from qtransformer.commands import flags, output_lock
from qtransformer.datasets.episode import Episode
from qtransformer.datasets.replay import TAILS, run_actions

# (random_action_prob, early_release_prob) cycled over the noisy episodes, see the docstring.
FAILURE_MODES = ((0.0, 0.0), (0.0, 0.0), (0.3, 0.0), (0.0, 0.5))
REPLAYS = ("open_loop", "closed_loop")
DEMO_FRACTION = 1 / 12  # the papers' ~8% clean demos (40k of 500k episodes)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", default="pick_place", help="task, comma list, or 'all'")
    parser.add_argument(
        "--episodes", type=flags.positive_int, default=100, help="episodes to record"
    )
    parser.add_argument("--out", required=True, help="output RLDS dataset directory")
    parser.add_argument(
        "--demo-fraction", type=flags.probability, default=DEMO_FRACTION,
        help="share of clean expert demos (default 1/12)",
    )  # fmt: skip
    parser.add_argument(
        "--noise",
        type=flags.nonneg_float,
        default=0.3,
        help="action noise of the replays (default 0.3)",
    )
    parser.add_argument(
        "--replay", choices=REPLAYS, default="open_loop",
        help="open_loop: noisy replays of the demos' actions (papers, default); "
        "closed_loop: the expert acting with noise",
    )  # fmt: skip
    parser.add_argument(
        "--replay-tail", choices=TAILS, default="truncate",
        help="open_loop replays end when the demo's actions run out (truncate, default) or "
        "hold still until the time limit (hold, the protocol before expert v2)",
    )  # fmt: skip
    parser.add_argument(
        "--image-size", type=flags.image_size, default=None,
        help="record camera frames of this size (default: no images)",
    )  # fmt: skip
    parser.add_argument(
        "--obs",
        default="privileged",
        choices=("privileged", "objects", "pixels"),
        help="what the learner observes (sim_envs/observations.py); pixels: 64x64 by default",
    )
    parser.add_argument("--seed", type=flags.seed, default=0, help="seed of the episodes")
    parser.add_argument(
        "--workers", type=flags.positive_int, default=1, help="parallel recording processes"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _check_counts(episodes: int, demo_fraction: float) -> None:
    """The same range checks as the CLI flags, for callers from Python."""
    if not 0.0 <= demo_fraction <= 1.0:
        raise ValueError(f"--demo-fraction must be in [0, 1], got {demo_fraction}")
    if episodes < 1:
        raise ValueError(f"--episodes must be >= 1, got {episodes}")


def episode_plan(tasks, episodes: int, demo_fraction: float, noise: float, seed: int) -> list:
    """One (task, seed, source, noise, random_action_prob, early_release_prob) per episode."""
    _check_counts(episodes, demo_fraction)
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


def record_episode(item, image_size: int | None = None, obs: str = "privileged") -> Episode:
    """Run one planned episode in the sim (observation mode `obs`) and return it."""
    from qtransformer import sim_envs

    task, ep_seed, source, noise, random_p, release_p = item
    env = sim_envs.make(task, seed=ep_seed, image_size=image_size, obs=obs)
    policy = sim_envs.expert_policy(
        env, noise=noise, random_action_prob=random_p, early_release_prob=release_p, seed=ep_seed
    )
    return run_actions(env, task, lambda t, ts: policy(ts), source)


def _record(args):
    if args[0] == "demo":
        from qtransformer.datasets.replay import record_demo

        return record_demo(*args[1:])
    if args[0] == "replay":
        from qtransformer.datasets.replay import record_replay

        return record_replay(*args[1:])
    return record_episode(*args[1:])


def open_loop_jobs(tasks, episodes: int, demo_fraction: float, noise: float, seed: int):
    """(demo jobs, function demo episodes -> replay jobs) of the open-loop protocol."""
    from qtransformer.datasets.replay import episode_seed

    _check_counts(episodes, demo_fraction)
    demos = min(episodes, max(1, int(round(demo_fraction * episodes))))
    demo_jobs = [(tasks[d % len(tasks)], episode_seed(seed, d)) for d in range(demos)]

    def replay_jobs(demo_episodes):
        jobs = []
        for r in range(episodes - demos):
            task, env_seed = demo_jobs[r % demos]
            actions = demo_episodes[r % demos].actions
            jobs.append((task, env_seed, actions, noise, episode_seed(seed, 1, r)))
        return jobs

    return demo_jobs, replay_jobs


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


@output_lock.releasing  # the lock of out_dir, taken below, ends with the call
def collect_dataset(
    out_dir,
    tasks=("pick_place",),
    episodes=100,
    demo_fraction=DEMO_FRACTION,
    noise=0.3,
    image_size=None,
    replay="open_loop",
    seed=0,
    workers=1,
    progress=True,
    overwrite=False,
    summary: dict | None = None,
    obs: str = "privileged",
    replay_tail: str = "truncate",
) -> Path:
    """Record `episodes` sim episodes (mix in the module docstring) to an RLDS dataset.

    `summary`, if given, is filled with {"episodes", "successes": {source: [successes, n]}}.
    """
    import multiprocessing

    from tqdm import tqdm

    from qtransformer.datasets import rlds_io

    tasks = parse_tasks(tasks)
    if replay not in REPLAYS:
        raise ValueError(f"--replay must be one of {', '.join(REPLAYS)}, got {replay!r}")
    rlds_io.check_output_dir(out_dir, overwrite)
    rlds_io.lock_output(out_dir)  # one writer, refused before any episode is recorded
    from qtransformer import sim_envs
    from qtransformer.sim_envs import expert

    # Same spec for every task; an unknown `obs` fails here, before any episode is recorded.
    spec = sim_envs.make(tasks[0], seed=seed, obs=obs).action_spec()
    low = np.broadcast_to(spec.minimum, spec.shape).astype(np.float32)
    high = np.broadcast_to(spec.maximum, spec.shape).astype(np.float32)
    counts = collections.defaultdict(lambda: [0, 0])
    env_kwargs = {"image_size": image_size, "obs": obs}
    pool = multiprocessing.get_context("spawn").Pool(workers) if workers > 1 else None
    imap = pool.imap if pool else map
    bar = tqdm(total=episodes, desc="collect", unit="ep", disable=not progress)

    def stream():
        if replay == "closed_loop":
            plan = episode_plan(tasks, episodes, demo_fraction, noise, seed)
            yield from imap(_record, [("closed_loop", item, image_size, obs) for item in plan])
            return
        demo_jobs, replay_jobs = open_loop_jobs(tasks, episodes, demo_fraction, noise, seed)
        demo_eps = []
        for episode in imap(_record, [("demo", *job, env_kwargs) for job in demo_jobs]):
            demo_eps.append(episode)
            yield episode
        jobs = [("replay", *job, env_kwargs, replay_tail) for job in replay_jobs(demo_eps)]
        yield from imap(_record, jobs)

    try:

        def tally():
            for episode in stream():
                counts[episode.source][0] += int(episode.success)
                counts[episode.source][1] += 1
                bar.update()
                bar.set_postfix(success=sum(c[0] for c in counts.values()))
                yield episode

        path = rlds_io.write_dataset(
            out_dir,
            tally(),
            action_low=low,
            action_high=high,
            overwrite=overwrite,
            description=(
                f"sim episodes of {', '.join(tasks)} (protocol {replay}, demo_fraction "
                f"{demo_fraction:.4g}, noise {noise})"
            ),
            obs_mode=obs,
            protocol={
                "replay": replay,
                "demo_fraction": demo_fraction,
                "noise": noise,
                "seed": seed,
                "expert_version": expert.VERSION,
                **({"replay_tail": replay_tail} if replay == "open_loop" else {}),
            },  # fmt: skip
        )
    finally:
        bar.close()
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
        replay=args.replay,
        seed=args.seed,
        workers=args.workers,
        progress=not args.no_progress,
        overwrite=args.overwrite,
        summary=summary,
        obs=args.obs,
        replay_tail=args.replay_tail,
    )
    print(f"recorded {summary['episodes']} episodes -> {path}")
    for source, (wins, n) in sorted(summary["successes"].items()):
        print(f"  {source}: {wins}/{n} successful")
    return 0
