"""Evaluate a policy in an environment we did not write: dm_env factories and Gymnasium ids.

    qtransformer eval --policy runs/reacher/policy --env examples.reacher:make_env \\
        --success-reward 1 --instruction "reach the target" --episodes 50 --report r.json
    qtransformer eval --policy DIR --env gymnasium:FetchReach-v4 \\
        --state-keys desired_goal,observation

--env MODULE:FACTORY imports MODULE (the current directory is on the path) and calls
FACTORY(seed=s) (or FACTORY() if it takes no seed) for each episode; it must return a
`dm_env.Environment`. --env gymnasium:ID calls `gymnasium.make(ID)` (Gymnasium is imported
only then) and adapts it to dm_env: `terminated` -> a termination (discount 0),
`truncated` -> a truncation (discount 1), reset(seed=s).

Observations become ours as `datasets/convert.py` builds them: an array is the state; a dict
gives the state as its --state-keys (default: every non-image key, sorted) flattened and
concatenated, and --image-key (a uint8 HxWx3 key) the image, resized to the policy's size.
The instruction is --instruction for every episode (use the one the dataset was converted
with). Success: info["is_success"] true at some step (Gymnasium), else with --success-reward X
some step's reward >= X, else our sim's rule: the episode terminates (discount 0) with a
positive reward. Episodes run B at a time in lockstep with one policy call per step
(episode i uses seed `rollout.episode_seed(seed, ENV, i)` whatever B); the report has the
Wilson interval of `metrics.summarize`, and videos use rollout's annotation.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import sys

import dm_env
import numpy as np
from dm_env import specs

from qtransformer.commands import flags


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `qtransformer eval` for an external environment."""
    group = parser.add_argument_group("external environment (--env)")
    group.add_argument(
        "--env",
        metavar="MODULE:FACTORY|gymnasium:ID",
        help="evaluate in this environment instead of --task: a dm_env factory or a "
        "Gymnasium id (default: none, use --task)",
    )
    group.add_argument(
        "--state-keys", default="", help="dict observations: keys concatenated into the state "
        "(default: every non-image key, sorted, as convert does)",
    )  # fmt: skip
    group.add_argument("--image-key", default=None, help="observation key used as the image")
    group.add_argument(
        "--success-reward", type=flags.finite_float, default=None,
        help="success = some step's reward >= this (default: info['is_success'], else a "
        "terminal step with positive reward)",
    )  # fmt: skip
    group.add_argument(
        "--instruction", default="", help="language instruction given to the policy "
        "(default: empty; use the one of the training data)",
    )  # fmt: skip
    group.add_argument(
        "--max-steps", type=flags.positive_int, default=None,
        help="cut episodes after this many steps (default: the environment's own limit)",
    )  # fmt: skip


class GymnasiumEnv(dm_env.Environment):
    """A Gymnasium env as a dm_env.Environment; `last_info` is the latest info dict."""

    def __init__(self, env, seed: int | None = None):
        self.env, self._seed, self.last_info = env, seed, {}

    def reset(self) -> dm_env.TimeStep:
        observation, self.last_info = self.env.reset(seed=self._seed)
        self._seed = None  # later resets continue the generator
        return dm_env.restart(observation)

    def step(self, action) -> dm_env.TimeStep:
        observation, reward, terminated, truncated, self.last_info = self.env.step(action)
        if terminated:
            return dm_env.termination(float(reward), observation)
        if truncated:
            return dm_env.truncation(float(reward), observation)
        return dm_env.transition(float(reward), observation)

    def action_spec(self):
        space = self.env.action_space
        if not hasattr(space, "low"):
            raise ValueError(f"--env: the action space {space} is not a continuous Box")
        low, high = np.asarray(space.low, np.float32), np.asarray(space.high, np.float32)
        return specs.BoundedArray(space.shape, np.float32, low, high, "action")

    def observation_spec(self):
        return self.env.observation_space

    def render(self, size: int):
        return self.env.render()

    def close(self):
        self.env.close()


def make_factory(spec: str, *, video: bool = False):
    """seed -> dm_env.Environment for `spec` ("module:factory" or "gymnasium:ID")."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"--env {spec!r}: expected MODULE:FACTORY or gymnasium:ID")
    if module_name == "gymnasium":
        try:
            import gymnasium
        except ImportError:
            raise ValueError(
                f"--env {spec}: Gymnasium is not installed (pip install gymnasium)"
            ) from None
        try:
            gymnasium.spec(attr)
        except Exception as e:  # gymnasium raises its own NameNotFound/VersionNotFound errors
            raise ValueError(f"--env {spec}: {e}") from None
        kwargs = {"render_mode": "rgb_array"} if video else {}
        return lambda seed: GymnasiumEnv(gymnasium.make(attr, **kwargs), seed)
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # console scripts do not put the cwd on the path
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"--env {spec}: cannot import it: {e}") from None
    takes_seed = "seed" in inspect.signature(factory).parameters

    def make(seed):
        env = factory(seed=seed) if takes_seed else factory()
        if not all(hasattr(env, m) for m in ("reset", "step", "action_spec")):
            raise ValueError(f"--env {spec} returned {type(env).__name__}, not a dm_env")
        return env

    return make


class ExternalEnv:
    """Wraps a dm_env: our observation dict, success tracking, frames (module docstring)."""

    def __init__(self, env, *, state_keys=None, image_key=None, image_size=None,
                 success_reward=None, max_steps=None):  # fmt: skip
        self.env, self.state_keys, self.image_key = env, state_keys, image_key
        self.image_size, self.success_reward, self.max_steps = image_size, success_reward, max_steps
        self.success, self.steps = False, 0

    def observation(self, raw) -> dict:
        """{"state": float32[S], "image": uint8[H, W, 3] if the policy takes one}."""
        if not isinstance(raw, dict):
            return {"state": np.asarray(raw, np.float32).reshape(-1)}
        keys = self.state_keys or sorted(
            k for k in raw if k != self.image_key and not _image(raw[k])
        )
        missing = [k for k in keys if k not in raw]
        if missing:
            raise ValueError(f"--state-keys {missing} not in the observation keys {sorted(raw)}")
        state = np.concatenate([np.asarray(raw[k], np.float32).reshape(-1) for k in keys])
        out = {"state": state}
        if self.image_size:
            if self.image_key not in raw:
                raise ValueError(
                    f"the policy takes an image: pass --image-key (one of {sorted(raw)})"
                )
            from PIL import Image

            image = Image.fromarray(np.asarray(raw[self.image_key], np.uint8))
            out["image"] = np.asarray(image.resize((self.image_size, self.image_size)))
        return out

    def _wrap(self, ts: dm_env.TimeStep) -> dm_env.TimeStep:
        info = getattr(self.env, "last_info", None) or {}
        reward = float(ts.reward or 0.0)
        if "is_success" in info:
            self.success |= bool(info["is_success"])
        elif self.success_reward is not None:
            self.success |= reward >= self.success_reward
        elif ts.last() and ts.discount == 0.0 and reward > 0.0:
            self.success = True
        if self.max_steps and self.steps >= self.max_steps and not ts.last():
            ts = dm_env.truncation(ts.reward, ts.observation)
        return ts._replace(observation=self.observation(ts.observation))

    def reset(self) -> dm_env.TimeStep:
        self.success, self.steps = False, 0
        return self._wrap(self.env.reset())

    def step(self, action) -> dm_env.TimeStep:
        self.steps += 1
        return self._wrap(self.env.step(action))

    def action_spec(self):
        return self.env.action_spec()

    def frame(self, size: int) -> np.ndarray:
        """uint8[H, W, 3]: physics.render (dm_control) or render() (Gymnasium)."""
        physics = getattr(self.env, "physics", None)
        if physics is not None:
            return np.asarray(physics.render(size, size, camera_id=0))
        if hasattr(self.env, "render"):
            return np.asarray(self.env.render(size))
        raise ValueError("--video: this environment has no physics.render or render()")


def _image(value) -> bool:
    value = np.asarray(value)
    return value.ndim == 3 and value.shape[-1] == 3 and value.dtype == np.uint8
