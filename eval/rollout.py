"""Batched policy rollouts in the sim: success rate, returns, annotated videos.

`evaluate` steps B environments in lockstep and makes one batched policy call per
control step, instead of a batch-1 loop per episode (the policy call dominates; see
`tests/test_eval_rollout.py`). The loop is eval/lockstep.py, shared with `eval --env`;
this module adds our tasks' envs, seeds, success rule, videos and stall report.

Episode i of task T with seed s always runs in `make(T, seed=episode_seed(s, T, i), obs=...)`,
in the observation mode the policy was trained in (read from its state spec,
`observation_mode`), independent of the batch size, so batched and unbatched evaluation see the same
initial states (and give the same results for a deterministic policy).

The policy sees, for a batch of B environments,

    TimeStep(step_type int32[B], reward float32[B], discount float32[B],
             observation={"state": float32[B, S], "instruction": tf.string[B]
                          (+ "image": uint8[B, H, W, 3] if the policy asks for it)})

and returns `.action` float32[B, 4], clipped to the env's action bounds.
"""

from __future__ import annotations

import weakref
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from qtransformer.commands import quiet
from qtransformer.eval import lockstep, metrics
from qtransformer.eval.stalls import StallTracker

BASELINES = ("expert", "random")


def episode_seed(seed: int, task: str, index: int) -> int:
    """Deterministic env seed of episode `index` of `task` (stable across processes)."""
    state = np.random.SeedSequence([seed, zlib.crc32(task.encode()), index])
    return int(state.generate_state(1)[0])


def resolve_tasks(task: str | Sequence[str]) -> list[str]:
    """ "pick_place" / "lift,stack" / "all" / a list -> task names, checked against TASKS."""
    from qtransformer.sim_envs import TASKS

    names = list(TASKS) if task == "all" else task
    if isinstance(names, str):
        names = [t.strip() for t in names.split(",") if t.strip()]
    unknown = [t for t in names if t not in TASKS]
    if not names or unknown:
        raise ValueError(f"unknown task(s) {unknown or names!r}; valid: {', '.join(TASKS)}, all")
    return list(names)


def load_policy(path: str | Path):
    """`tf.saved_model.load` a PolicySaver export, with an error naming `path` if it is not one."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"policy directory {path} does not exist")
    if not (path / "saved_model.pb").exists():
        raise ValueError(f"{path} is not a saved policy (no saved_model.pb; export with train)")
    import tensorflow as tf  # after the checks: a wrong path fails fast

    try:
        policy = tf.saved_model.load(str(path))
    except Exception as e:  # TF raises many types for corrupt models
        raise ValueError(f"cannot load saved policy {path}: {e}") from e
    if not hasattr(policy, "action"):
        raise ValueError(f"{path} is a SavedModel but not a tf_agents policy (no .action)")
    return policy


def _observation_shapes(policy) -> dict[str, tuple]:
    """{"state": (S,), "image": (H, W, 3)?} of the policy's observation (no batch dimension)."""
    import tensorflow as tf

    spec = getattr(policy, "time_step_spec", None)
    if spec is not None and not callable(spec):  # in-memory TFPolicy
        observation = spec.observation if isinstance(spec.observation, dict) else {}
        return {k: tuple(observation[k].shape) for k in ("state", "image") if k in observation}
    signature = getattr(policy, "signatures", {}).get("action")
    shapes = {}
    for leaf in tf.nest.flatten(signature.structured_input_signature if signature else ()):
        for key in ("state", "image"):
            # "0/observation/state", not the policy state's "1/window/state" (history)
            if isinstance(leaf, tf.TensorSpec) and (leaf.name or "").endswith(f"observation/{key}"):
                shapes[key] = tuple(leaf.shape[1:])
    return shapes


def observation_mode(policy) -> tuple[str, int | None]:
    """(obs mode, image size) to build the sim in for `policy`, read from its observation spec.

    Each mode's state size is distinct (sim_envs/observations.py), so this works on a policy
    loaded with `tf.saved_model.load` alone; a policy without a state spec gets "privileged".
    """
    from qtransformer.sim_envs import observations

    shapes = _observation_shapes(policy)
    image = shapes.get("image")
    image_size = None if image is None else int(image[0])
    if "state" not in shapes:
        return "privileged", image_size
    mode = observations.mode_for_state_size(int(shapes["state"][-1]))
    if mode == "pixels" and image_size is None:
        raise ValueError("the policy's state is proprioception only but it takes no image")
    return mode, image_size


def _make_actor(policy, seed: int) -> Callable[[list, list], np.ndarray]:
    """Returns act(envs, time_steps) -> float32[B, 4] for the given policy kind."""
    from qtransformer import sim_envs

    if policy == "random":
        rng = np.random.default_rng(seed)
        return lambda envs, steps: rng.uniform(-1, 1, (len(envs), 4)).astype(np.float32)
    if policy == "expert":
        experts = weakref.WeakKeyDictionary()  # env -> its scripted expert

        def act_expert(envs, steps):
            out = []
            for env, ts in zip(envs, steps, strict=True):
                if env not in experts:
                    experts[env] = sim_envs.expert_policy(env, seed=seed)
                out.append(experts[env](ts))
            return np.stack(out).astype(np.float32)

        return act_expert

    return tf_policy_actor(policy, lambda envs: [e.task.language_instruction for e in envs])


def tf_policy_actor(policy, instructions: Callable[[list], list[str]]):
    """act(envs, time_steps) -> float32[B, D] for a TFPolicy or a loaded SavedModel policy.

    Batches the dm_env time steps of B envs into one tf_agents TimeStep (state, image when
    the time steps have one, and `instructions(envs)`) and returns the policy's actions.
    A policy with a state (observation history, qtransformer/model/policy.py) gets its state back
    on the next call, row b for env slot b; a slot that starts a new episode passes a FIRST
    time step, which resets that row. The state starts from `get_initial_state(B)` and again
    whenever B changes.
    """
    import tensorflow as tf
    from tf_agents.policies import tf_policy
    from tf_agents.trajectories import time_step as ts_lib

    action_fn = policy.action
    if isinstance(policy, tf_policy.TFPolicy):  # in-memory policy: compile once, not per call
        action_fn = tf.function(policy.action)
    carried = {"state": (), "batch": None}  # the policy state of the last call, its batch

    def act_tf(envs, steps):
        observation = {
            "state": tf.constant(np.stack([s.observation["state"] for s in steps]), tf.float32),
            "instruction": tf.constant(instructions(envs), tf.string),
        }
        if "image" in steps[0].observation:
            observation["image"] = tf.constant(np.stack([s.observation["image"] for s in steps]))
        time_step = ts_lib.TimeStep(
            step_type=tf.constant([int(s.step_type) for s in steps], tf.int32),
            reward=tf.constant([s.reward or 0.0 for s in steps], tf.float32),
            discount=tf.constant([1.0 if s.discount is None else s.discount for s in steps]),
            observation=observation,
        )
        if carried["batch"] != len(steps):
            initial = getattr(policy, "get_initial_state", None)  # absent on plain doubles
            state = initial(batch_size=len(steps)) if initial else ()
            carried.update(state=state, batch=len(steps))
        if not tf.nest.flatten(carried["state"]):  # stateless: the call of before (W = 1)
            return np.asarray(action_fn(time_step).action, np.float32)
        policy_step = action_fn(time_step, carried["state"])
        carried["state"] = policy_step.state
        return np.asarray(policy_step.action, np.float32)

    return act_tf


def _video_frame(env, time_step, size: int) -> np.ndarray:
    """The "front" view; for an image policy, side by side with what the policy saw.

    Returns uint8[size, size, 3], or uint8[size, 2 * size, 3] with the observation image
    (nearest-neighbour upscaled, so its pixels stay visible) on the right.
    """
    from PIL import Image

    from qtransformer import sim_envs

    front = sim_envs.render_frame(env, size)
    seen = time_step.observation.get("image")
    if seen is None:
        return front
    seen = np.asarray(Image.fromarray(seen).resize((size, size), Image.NEAREST))
    return np.concatenate([front, seen], axis=1)


def rollout_task(
    policy,
    task: str,
    episodes: int,
    seed: int = 0,
    *,
    batch_size: int | None = None,
    video_episodes: int = 0,
    video_size: int = 128,
    progress: bool = True,
) -> tuple[dict, list[np.ndarray]]:
    """Runs `episodes` episodes of one task; returns (report numbers, annotated frames)."""
    from qtransformer import sim_envs

    if episodes < 1:
        raise ValueError(f"--episodes must be >= 1, got {episodes}")
    obs, image_size = ("privileged", None) if isinstance(policy, str) else observation_mode(policy)
    stalls = StallTracker()  # where failed episodes stop moving (eval/stalls.py)

    def start(index):
        env = sim_envs.make(
            task, seed=episode_seed(seed, task, index), image_size=image_size, obs=obs
        )
        ts = env.reset()
        stalls.observe(index, env)
        return env, ts

    def on_step(index, env, action):
        stalls.act(index, action)
        stalls.observe(index, env)

    def success(env, ts):  # a terminal step (discount 0) with the sparse success reward
        return ts.discount == 0.0 and (ts.reward or 0.0) > 0.0

    run = lockstep.run(
        episodes, _make_actor(policy, seed), start, success, name=task, batch_size=batch_size,
        action_dtype=np.float32, on_step=on_step,
        on_finish=lambda index, env, ok: stalls.finish(index, ok),
        frame=lambda env, ts: _video_frame(env, ts, video_size), video_episodes=video_episodes,
        progress=progress,
    )  # fmt: skip
    report = run.report(task=task, seed=seed, stalls=stalls.report())
    return report, run.video(f"{task} ")


def evaluate(
    policy,
    task: str | Sequence[str],
    episodes: int,
    seed: int = 0,
    *,
    video_path: str | Path | None = None,
    video_episodes: int = 3,
    progress: bool = True,
    batch_size: int | None = None,
    video_size: int = 128,
    policy_name: str | None = None,
) -> dict:
    """Evaluates a policy for `episodes` episodes per task; returns the report dict.

    Args:
      policy: anything with `.action(time_step)` (a loaded PolicySaver export or an
        in-memory tf_agents TFPolicy), a path to an export, or "expert" / "random".
      task: a task name, a comma list, a list, or "all"; several tasks add `per_task`
        and the top-level numbers pool all episodes.
      episodes: episodes per task.
      video_path: .mp4 or .gif; the first `video_episodes` episodes of each task,
        concatenated, each framed green (success) or red (failure).
      batch_size: environments stepped in lockstep (default min(episodes, 64); 1 = the
        slow per-episode loop).
      policy_name: what the report's `policy` field says (default: the path/baseline).
    """
    tasks = resolve_tasks(task)
    if isinstance(policy, str | Path) and str(policy) not in BASELINES:
        policy_name = policy_name or str(policy)
        policy = load_policy(policy)
    elif isinstance(policy, str):
        policy_name = policy_name or policy
    elif not hasattr(policy, "action"):
        raise ValueError(f"policy must have .action(time_step) or be one of {BASELINES}")
    if not isinstance(policy, str):  # not a baseline: its greedy decoder is XLA-compiled
        quiet.hide_xla_banner()
    want_video = video_episodes if video_path else 0
    per_task, video = {}, []
    for name in tasks:
        report, frames = rollout_task(
            policy, name, episodes, seed, batch_size=batch_size, video_episodes=want_video,
            video_size=video_size, progress=progress,
        )  # fmt: skip
        per_task[name] = report
        video += frames
    if len(tasks) == 1:
        report = dict(per_task[tasks[0]])
    else:
        pooled = [r for r in per_task.values()]
        report = metrics.summarize(
            [i < r["successes"] for r in pooled for i in range(r["episodes"])],
            [r["mean_return"] for r in pooled for _ in range(r["episodes"])],
            [r["mean_episode_length"] for r in pooled for _ in range(r["episodes"])],
        )
        report.update(per_task=per_task, wall_s=sum(r["wall_s"] for r in pooled))
    report.update(task=",".join(tasks), seed=seed, policy=policy_name or type(policy).__name__)
    if video_path:
        from qtransformer import sim_envs

        sim_envs.write_video(video, video_path)
        report["video"] = str(video_path)
    return report
