"""Render a video of the scripted expert solving a task.

    MUJOCO_GL=egl qtransformer render --task lift --out lift.mp4 --episodes 2 --seed 0 --size 128

Episode k uses seed SEED + k. The last frames of each episode get a green border if the episode
succeeded, red if it did not. --noise adds Gaussian noise to the expert's actions (see expert.py).
The video is .mp4 or .gif by the suffix of --out.
"""

from __future__ import annotations

import argparse

from qtransformer.sim_envs import TASKS

MARKED_FRAMES = 5  # frames at the end of an episode that carry the success border


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", required=True, choices=TASKS, help="task to render")
    parser.add_argument("--out", required=True, help="output video path (.mp4 or .gif)")
    parser.add_argument("--episodes", type=int, default=2, help="episodes to render (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first episode")
    parser.add_argument("--size", type=int, default=128, help="frame height and width in pixels")
    parser.add_argument("--noise", type=float, default=0.0, help="expert action noise std")
    parser.add_argument("--fps", type=int, default=20, help="frames per second (default 20)")


def render_episodes(task, out, episodes=2, seed=0, size=128, noise=0.0, fps=20) -> list[bool]:
    """Renders `episodes` expert episodes of `task` into one video at `out`; returns successes."""
    from qtransformer.sim_envs import expert, suite, video

    if episodes < 1:
        raise ValueError(f"--episodes must be >= 1; got {episodes}")
    if seed < 0:
        raise ValueError(f"--seed must be >= 0; got {seed}")
    frames, successes = [], []
    for k in range(episodes):
        env = suite.make(task, seed=seed + k, image_size=size)
        policy = expert.expert_policy(env, noise=noise, seed=seed + k)
        time_step = env.reset()
        episode = [time_step.observation["image"]]
        success = False
        while not time_step.last():
            time_step = env.step(policy(time_step))
            episode.append(time_step.observation["image"])
            success = success or time_step.reward > 0
        border = max(1, size // 40)
        episode[-MARKED_FRAMES:] = [
            video.mark_frame(f, success, border) for f in episode[-MARKED_FRAMES:]
        ]
        frames.extend(episode + episode[-1:] * (fps // 2))  # hold the last frame half a second
        successes.append(success)
    video.write_video(frames, out, fps=fps)
    return successes


def run(args: argparse.Namespace) -> int:
    successes = render_episodes(
        args.task, args.out, args.episodes, args.seed, args.size, args.noise, args.fps
    )
    print(f"wrote {args.out}: {sum(successes)}/{len(successes)} episodes succeeded")
    return 0
