"""Dataset conventions of the field: reward alignment, reward handling, termination vs time-out.

Three choices `qtransformer convert` makes explicit (flags in datasets/convert.py):

**Reward alignment** (RLDS input; a step t holds observation o_t and action a_t; T+1 steps):

    step  (RLDS / ours): step t's reward r_t follows a_t; the is_last step holds o_T, a
          dummy action and reward 0.            transition rewards = reward[0:T]
    next  (envlogger / dm_env TimeStep): step t's reward was received on arriving at o_t,
          so it follows a_{t-1}; the first step's reward is 0 (or None) and the is_last
          step carries the last action's reward. transition rewards = reward[1:T+1]

`detect_alignment` picks one from the data: a non-zero reward on an is_last step means
`next`, a non-zero reward on an is_first step means `step`; data showing both is refused
(pass the flag); data showing neither (rewards only mid-episode, or none) is read as `step`,
the RLDS default, and the summary says it was a default, not a detection.

**Reward handling**: `keep` stores the rewards as recorded (dense, multi-step, negative);
`sparse` stores 1 on the last transition of a successful episode and 0 everywhere else
(success: the episode's `success` metadata if the input has it, else last reward > 0).

**Episode end**: `data` takes termination from the input's flags (RLDS is_terminal, else a
0 discount on the is_last step; robomimic `dones`; npz `terminals`; without flags: last
reward > 0); `success` makes exactly the successful episodes terminal and every other one a
time-out; `timeout` makes every episode a time-out (values bootstrap from o_T). Terminal
transitions get discount 0 in training; time-outs keep gamma^k (see qtransformer/training/data.py).
This module is numpy only.
"""

from __future__ import annotations

import numpy as np

ALIGNMENTS = ("auto", "step", "next")
REWARD_MODES = ("keep", "sparse")
EPISODE_ENDS = ("data", "success", "timeout")


def detect_alignment(step_rewards: list[np.ndarray]) -> tuple[str, str]:
    """(alignment, reason) from each episode's T+1 per-step rewards (module docstring)."""
    on_last = sum(1 for r in step_rewards if len(r) and r[-1] != 0)
    on_first = sum(1 for r in step_rewards if len(r) > 1 and r[0] != 0)
    n = len(step_rewards)
    if on_last and on_first:
        raise ValueError(
            f"cannot detect the reward alignment: {on_last} of {n} episodes have a reward on "
            f"the is_last step (envlogger) and {on_first} on the is_first step (RLDS); "
            "pass --reward-alignment step or next"
        )
    if on_last:
        return "next", f"detected: {on_last} of {n} episodes have a reward on the is_last step"
    if on_first:
        return "step", f"detected: {on_first} of {n} episodes have a reward on the is_first step"
    return "step", "default (rewards never on the first or last step: both read the same way)"


def align_rewards(step_rewards: np.ndarray, alignment: str) -> np.ndarray:
    """The T transition rewards from T+1 per-step rewards; refuses a mismatched alignment."""
    step_rewards = np.asarray(step_rewards)
    if alignment == "step":
        if len(step_rewards) and step_rewards[-1] != 0:
            raise ValueError(
                "non-zero reward on the is_last step (the envlogger alignment); "
                "pass --reward-alignment next (or auto)"
            )
        return step_rewards[:-1]
    if alignment == "next":
        if len(step_rewards) > 1 and step_rewards[0] != 0:
            raise ValueError(
                "non-zero reward on the is_first step, which the envlogger alignment "
                "(--reward-alignment next) cannot hold; pass --reward-alignment step"
            )
        return step_rewards[1:]
    raise ValueError(f"--reward-alignment must be one of {ALIGNMENTS}, got {alignment!r}")


def episode_success(rewards: np.ndarray, success: bool | None) -> bool:
    """Success for reward/terminal handling: metadata if known, else last reward > 0."""
    if success is not None:
        return bool(success)
    return bool(len(rewards) and rewards[-1] > 0)


def apply_conventions(
    rewards: np.ndarray,
    terminal: bool,
    success: bool | None,
    *,
    reward_mode: str = "keep",
    episode_end: str = "data",
) -> tuple[np.ndarray, bool, bool]:
    """(rewards float32[T], terminal, success) after --reward and --episode-end."""
    if reward_mode not in REWARD_MODES:
        raise ValueError(f"--reward must be one of {REWARD_MODES}, got {reward_mode!r}")
    if episode_end not in EPISODE_ENDS:
        raise ValueError(f"--episode-end must be one of {EPISODE_ENDS}, got {episode_end!r}")
    rewards = np.asarray(rewards, np.float32)
    succeeded = episode_success(rewards, success)
    if reward_mode == "sparse":
        rewards = np.zeros_like(rewards)
        rewards[-1] = float(succeeded)
    if episode_end == "success":
        terminal = succeeded
    elif episode_end == "timeout":
        terminal = False
    return rewards, bool(terminal), succeeded


def return_range(rewards: np.ndarray, gamma: float) -> tuple[float, float]:
    """(min, max) over t of the Monte-Carlo return-to-go G_t = sum_{j>=t} g^{j-t} r_j."""
    g = 0.0
    returns = np.empty(len(rewards), np.float64)
    for t in range(len(rewards) - 1, -1, -1):
        g = float(rewards[t]) + gamma * g
        returns[t] = g
    return float(returns.min()), float(returns.max())


def value_range(
    reward_range: tuple[float, float],
    returns: tuple[float, float],
    truncated_reward: bool,
    gamma: float,
) -> tuple[float, float]:
    """[v_min, v_max] the values of this data can take, before any support padding.

    The range of the data's Monte-Carlo returns, widened to include 0 (the value of a
    terminal state); if a time-out episode has a non-zero reward, values bootstrap past the
    recorded returns, so the range also covers r_min / (1 - g) .. r_max / (1 - g), the
    bounds of an endless discounted sum. Sparse 0/1 data (success = terminal) gives [0, 1].
    """
    lo, hi = min(0.0, returns[0]), max(0.0, returns[1])
    if truncated_reward:
        lo = min(lo, min(0.0, reward_range[0]) / (1.0 - gamma))
        hi = max(hi, max(0.0, reward_range[1]) / (1.0 - gamma))
    return float(lo), float(hi)


class RewardStats:
    """Accumulates what the value range needs over episodes (for metadata.json)."""

    def __init__(self, gamma: float):
        self.gamma = float(gamma)
        self.reward_min = self.return_min = float("inf")
        self.reward_max = self.return_max = float("-inf")
        self.truncated_reward = False
        self.terminal = self.timeout = 0

    def add(self, rewards: np.ndarray, terminal: bool) -> None:
        rewards = np.asarray(rewards, np.float64)
        if not len(rewards):
            return
        self.reward_min = min(self.reward_min, float(rewards.min()))
        self.reward_max = max(self.reward_max, float(rewards.max()))
        lo, hi = return_range(rewards, self.gamma)
        self.return_min, self.return_max = min(self.return_min, lo), max(self.return_max, hi)
        self.truncated_reward |= (not terminal) and bool(np.any(rewards != 0))
        self.terminal += int(terminal)
        self.timeout += int(not terminal)

    def as_dict(self) -> dict:
        """metadata.json fields: reward_range, return_range (at return_gamma), value_range."""
        if self.terminal + self.timeout == 0:
            return {}
        rewards = (self.reward_min, self.reward_max)
        returns = (self.return_min, self.return_max)
        return {
            "reward_range": list(rewards),
            "return_gamma": self.gamma,
            "return_range": list(returns),
            "truncated_reward": self.truncated_reward,
            "value_range": list(value_range(rewards, returns, self.truncated_reward, self.gamma)),
            "terminal_episodes": self.terminal,
            "timeout_episodes": self.timeout,
        }


def align_raw_episodes(raws, alignment: str) -> tuple[list, str, str]:
    """Sets `rewards` of RLDS RawEpisodes from their `step_rewards`: (raws, used, reason).

    alignment "auto" detects it from all episodes (`detect_alignment`). An episode whose
    rewards do not fit the alignment gets `error` set (reported like any bad episode).
    """
    raws = list(raws)
    if alignment not in ALIGNMENTS:
        raise ValueError(f"--reward-alignment must be one of {ALIGNMENTS}, got {alignment!r}")
    reason = "given by --reward-alignment"
    if alignment == "auto":
        readable = [r.step_rewards for r in raws if r.step_rewards is not None and not r.error]
        alignment, reason = detect_alignment(readable)
    for raw in raws:
        if raw.step_rewards is None or raw.error:
            continue
        try:
            raw.rewards = align_rewards(raw.step_rewards, alignment)
        except ValueError as e:
            raw.error = ("reward", str(e))
    return raws, alignment, reason
