"""One episode in memory (numpy) and its RLDS step layout.

An episode of T transitions is held as T+1 observations and T actions/rewards:

    states  float32[T+1, S]   o_0 .. o_T
    images  uint8[T+1, H, W, 3] or None
    actions float32[T, D]     a_t taken in o_t
    rewards float32[T]        r_t received after a_t
    terminal bool             the last transition reached a terminal state (success)
                              rather than the time limit

`to_steps` lays it out as T+1 RLDS steps (contract in datasets/rlds_io.py): step t<T holds
(o_t, a_t, r_t, d_t) with d_t = 0 only for the terminal transition; the last step holds o_T,
a zero action, reward 0, discount 0 if terminal else 1, and is_terminal = terminal.
This module is numpy only, so the CLI and workers can import it without TensorFlow.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass
class Episode:
    """A recorded episode; see the module docstring for shapes."""

    states: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminal: bool
    instruction: str
    task: str
    source: str
    images: np.ndarray | None = None
    success: bool | None = None  # defaults to `terminal`

    def __post_init__(self):
        self.states = np.asarray(self.states, np.float32)
        self.actions = np.asarray(self.actions, np.float32)
        self.rewards = np.asarray(self.rewards, np.float32).reshape(-1)
        if self.images is not None:
            self.images = np.asarray(self.images, np.uint8)
        self.terminal = bool(self.terminal)
        self.success = self.terminal if self.success is None else bool(self.success)

    @property
    def length(self) -> int:
        """Number of transitions T."""
        return int(self.actions.shape[0])

    def to_steps(self) -> dict:
        """The TFDS example {steps: {...}, episode_metadata: {...}} of this episode."""
        t = self.length
        zero_action = np.zeros((1, self.actions.shape[1]), np.float32)
        discount = np.ones(t + 1, np.float32)
        if self.terminal:
            discount[t - 1] = 0.0  # a_{T-1} led to the terminal state
            discount[t] = 0.0
        is_first = np.zeros(t + 1, bool)
        is_first[0] = True
        is_last = np.zeros(t + 1, bool)
        is_last[t] = True
        is_terminal = np.zeros(t + 1, bool)
        is_terminal[t] = self.terminal
        observation = {"state": self.states}
        if self.images is not None:
            observation["image"] = self.images
        steps = {
            "observation": observation,
            "action": np.concatenate([self.actions, zero_action]),
            "reward": np.concatenate([self.rewards, [0.0]]).astype(np.float32),
            "discount": discount,
            "is_first": is_first,
            "is_last": is_last,
            "is_terminal": is_terminal,
            "language_instruction": [self.instruction] * (t + 1),
        }
        metadata = {"task": self.task, "success": self.success, "source": self.source}
        return {"steps": steps, "episode_metadata": metadata}

    @classmethod
    def from_steps(cls, example: dict) -> Episode:
        """Inverse of `to_steps` for a numpy example read back from a dataset."""
        steps, meta = example["steps"], example["episode_metadata"]
        obs = steps["observation"]
        instruction = steps["language_instruction"][0]
        return cls(
            states=obs["state"],
            images=obs.get("image"),
            actions=steps["action"][:-1],
            rewards=steps["reward"][:-1],
            terminal=bool(steps["is_terminal"][-1]),
            instruction=_text(instruction),
            task=_text(meta["task"]),
            source=_text(meta["source"]),
            success=bool(meta["success"]),
        )


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
