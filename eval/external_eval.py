"""`qtransformer eval --env ...`: batched rollouts in an external environment, and the report.

Adapters and the rules for observations, success and seeds are in eval/external.py. This
module is imported by the `eval` CLI at start-up, so it imports nothing heavy at the top.
Report fields: those of `metrics.summarize` (success_rate, success_ci95 (Wilson), ...) plus
task/env (the --env spec), success_rule, seed, batch_size, wall_s, env_steps_per_s, policy.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from qtransformer.eval import external

    external.add_arguments(parser)


def _policy_state_size(policy) -> tuple[int | None, int | None]:
    """(state size, image side) the policy's observation spec asks for (None: not known)."""
    import tensorflow as tf

    spec = getattr(policy, "time_step_spec", None)
    if spec is not None and not callable(spec) and isinstance(spec.observation, dict):
        obs = spec.observation
        image = obs.get("image")
        return int(obs["state"].shape[-1]), None if image is None else int(image.shape[0])
    signature = getattr(policy, "signatures", {}).get("action")
    state = image = None
    for leaf in tf.nest.flatten(signature.structured_input_signature if signature else ()):
        # The time step's "0/observation/state", not a history policy state's "1/window/state".
        name = (leaf.name or "") if isinstance(leaf, tf.TensorSpec) else ""
        if name.endswith("observation/state"):
            state = int(leaf.shape[-1])
        if name.endswith("observation/image"):
            image = int(leaf.shape[1])
    return state, image


def _actor(policy, instruction: str, seed: int):
    """act(envs, time_steps) -> float32[B, D] for a policy object or the random baseline."""
    if policy == "random":
        rng = np.random.default_rng(seed)

        def act_random(envs, steps):
            spec = envs[0].action_spec()
            return rng.uniform(spec.minimum, spec.maximum, (len(envs), *spec.shape))

        return act_random
    from qtransformer.eval.rollout import tf_policy_actor

    return tf_policy_actor(policy, lambda envs: [instruction] * len(envs))


def evaluate_external(
    policy, env: str, episodes: int, seed: int = 0, *, state_keys=None, image_key=None,
    success_reward=None, instruction: str = "", max_steps=None, batch_size=None,
    video_path=None, video_episodes: int = 3, video_size: int = 128, progress: bool = True,
    policy_name: str | None = None,
) -> dict:  # fmt: skip
    """Runs `episodes` episodes of `env` (external.make_factory spec); returns the report."""
    from qtransformer.eval import external, lockstep, rollout

    if episodes < 1:
        raise ValueError(f"--episodes must be >= 1, got {episodes}")
    factory = external.make_factory(env, video=bool(video_path))
    state_size, image_size = (None, None) if policy == "random" else _policy_state_size(policy)

    def start(index):
        wrapped = external.ExternalEnv(
            factory(rollout.episode_seed(seed, env, index)), state_keys=state_keys,
            image_key=image_key, image_size=image_size, success_reward=success_reward,
            max_steps=max_steps,
        )  # fmt: skip
        ts = wrapped.reset()
        got = ts.observation["state"].shape[0]
        if state_size is not None and got != state_size:
            raise ValueError(
                f"the policy takes a state of size {state_size}, --env {env} gives {got}; "
                "choose the observation keys with --state-keys (as at convert)"
            )
        return wrapped, ts

    def on_finish(index, wrapped, success):
        if hasattr(wrapped.env, "close"):
            wrapped.env.close()

    run = lockstep.run(
        episodes, _actor(policy, instruction, seed), start, lambda wrapped, ts: wrapped.success,
        name=env, where=f"--env {env}", batch_size=batch_size, on_finish=on_finish,
        frame=lambda wrapped, ts: wrapped.frame(video_size),
        video_episodes=video_episodes if video_path else 0, progress=progress,
    )  # fmt: skip
    rule = (
        f"some step's reward >= {success_reward:g}" if success_reward is not None
        else "info['is_success'] at some step, else a terminal step with positive reward"
    )  # fmt: skip
    report = run.report(
        task=env, env=env, success_rule=rule, seed=seed,
        policy=policy_name or (policy if isinstance(policy, str) else type(policy).__name__),
    )  # fmt: skip
    if video_path:
        from qtransformer import sim_envs

        sim_envs.write_video(run.video(), video_path)
        report["video"] = str(video_path)
    return report


def run(args: argparse.Namespace) -> int:
    """`qtransformer eval --env ...` (called by eval/evaluate.py when --env is given)."""
    from qtransformer.eval import metrics, rollout

    if args.baseline == "expert":
        raise ValueError("--baseline expert is our sim's scripted expert: use --task, not --env")
    if args.max_steps is not None and args.max_steps < 1:
        raise ValueError(f"--max-steps must be >= 1, got {args.max_steps}")
    if args.video and not args.video.endswith((".mp4", ".gif")):
        raise ValueError(f"--video {args.video}: the file must end in .mp4 or .gif")
    policy = args.baseline or rollout.load_policy(args.policy)
    report = evaluate_external(
        policy, args.env, args.episodes, args.seed,
        state_keys=[k for k in args.state_keys.split(",") if k] or None,
        image_key=args.image_key, success_reward=args.success_reward,
        instruction=args.instruction, max_steps=args.max_steps, batch_size=args.batch_size,
        video_path=args.video, video_episodes=args.video_episodes,
        progress=not args.no_progress, policy_name=args.baseline or args.policy,
    )  # fmt: skip
    print(metrics.format_table(metrics.table_rows(report, report["policy"])))
    if args.report:
        metrics.write_report(report, Path(args.report))
        print(f"report: {args.report}")
    if args.video:
        print(f"video:  {args.video}")
    return 0
