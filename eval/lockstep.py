"""The one batched rollout loop: B environment slots in lockstep, one policy call per step.

`rollout.rollout_task` (our sim tasks) and `external_eval.evaluate_external` (`eval --env`)
both run here; they differ only in what they pass in:

    start(i) -> (env, first time step)   make and reset the env of episode i (its seed, checks)
    success(env, last time step) -> bool how the environment says an episode succeeded
    on_step(i, env, action), on_finish(i, env, success)   optional hooks (stall tracking, close)
    frame(env, time step) -> uint8[H, W, 3]              a video frame (first `video_episodes`)

B slots each hold one episode. Every step, all B slots pass their last time step to
`act(envs, time_steps) -> [B, D]`, so the batch shape stays fixed: a finished slot rides along
with its last step (its action is dropped) until the tail, and a slot whose episode ends takes
the next unstarted episode at once, so the actor's next call sees that slot's FIRST time step
(a policy with state resets that row there: `rollout.tf_policy_actor`). Actions are clipped to
the env's bounds. `Episodes.report` and `Episodes.video` write the result up the same way for
every environment.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import numpy as np

from qtransformer.eval import metrics


@dataclasses.dataclass
class Episodes:
    """Per-episode outcomes of one run (lists indexed by episode), its frames and its speed."""

    successes: list[bool]
    returns: list[float]
    lengths: list[int]
    frames: dict[int, list[np.ndarray]]
    batch_size: int
    env_steps: int = 0
    seconds: float = 0.0

    def report(self, **fields) -> dict:
        """`metrics.summarize` + batch_size, wall_s, env_steps_per_s, then `fields`."""
        report = metrics.summarize(self.successes, self.returns, self.lengths)
        report.update(
            batch_size=self.batch_size, wall_s=round(self.seconds, 3),
            env_steps_per_s=round(self.env_steps / max(self.seconds, 1e-9), 1), **fields,
        )  # fmt: skip
        return report

    def video(self, label: str = "") -> list[np.ndarray]:
        """The recorded episodes in order, each framed and captioned "{label}ep {i}"."""
        video = []
        for index in sorted(self.frames):
            video += annotate(self.frames[index], self.successes[index], f"{label}ep {index}")
        return video


def run(
    episodes: int,
    act: Callable[[list, list], np.ndarray],
    start: Callable[[int], tuple],
    success: Callable[[object, object], bool],
    *,
    name: str,
    batch_size: int | None = None,
    action_dtype=None,
    on_step: Callable | None = None,
    on_finish: Callable | None = None,
    frame: Callable | None = None,
    video_episodes: int = 0,
    progress: bool = True,
    where: str | None = None,
) -> Episodes:
    """Runs episodes 0..episodes-1, min(episodes, batch_size or 64) at a time (module doc).

    `name` labels the progress bar ("eval {name}"); `where` (default `name`) names the env in
    the error for actions of the wrong shape. Actions are cast to `action_dtype` (default: the
    action spec's dtype) after clipping.
    """
    from tqdm.auto import tqdm

    batch = min(episodes, batch_size or 64)
    out = Episodes([False] * episodes, [0.0] * episodes, [0] * episodes, {}, batch)

    def begin(index):
        env, ts = start(index)
        if frame is not None and index < video_episodes:
            out.frames[index] = [frame(env, ts)]
        return [index, env, ts]

    started = time.perf_counter()
    slots = [begin(i) for i in range(batch)]  # [episode index, env, last time step]
    next_episode, finished = batch, 0
    bar = tqdm(total=episodes, desc=f"eval {name}", unit="ep", disable=not progress)
    while finished < episodes:
        done = [s[2].last() for s in slots]
        actions = act([s[1] for s in slots], [s[2] for s in slots])
        spec = slots[0][1].action_spec()
        if np.shape(actions)[1:] != tuple(spec.shape):
            raise ValueError(
                f"the policy's actions have shape {np.shape(actions)[1:]}, {where or name} "
                f"takes {tuple(spec.shape)}"
            )
        for slot, action, was_done in zip(slots, actions, done, strict=True):
            if was_done:
                continue
            index, env = slot[0], slot[1]
            spec = env.action_spec()
            clipped = np.clip(action, spec.minimum, spec.maximum)
            ts = env.step(clipped.astype(action_dtype or spec.dtype))
            if on_step is not None:
                on_step(index, env, action)
            out.env_steps += 1
            slot[2] = ts
            out.returns[index] += float(ts.reward or 0.0)
            out.lengths[index] += 1
            if index in out.frames:
                out.frames[index].append(frame(env, ts))
            if ts.last():
                out.successes[index] = bool(success(env, ts))
                if on_finish is not None:
                    on_finish(index, env, out.successes[index])
                finished += 1
                bar.update(1)
                if next_episode < episodes:
                    slot[:] = begin(next_episode)
                    next_episode += 1
    bar.close()
    out.seconds = time.perf_counter() - started
    return out


def annotate(frames: list[np.ndarray], success: bool, label: str) -> list[np.ndarray]:
    """Green (success) or red (failure) border and a caption on every frame of an episode."""
    from PIL import Image, ImageDraw

    colour = (40, 200, 60) if success else (220, 40, 40)
    out = []
    for frame in frames:
        image = Image.fromarray(frame)
        draw = ImageDraw.Draw(image)
        w, h = image.size
        border = max(2, w // 40)
        draw.rectangle([0, 0, w - 1, h - 1], outline=colour, width=border)
        text = f"{label}: {'success' if success else 'failure'}"
        draw.rectangle([border, border, border + 7 * len(text), border + 12], fill=(0, 0, 0))
        draw.text((border + 2, border), text, fill=colour)
        out.append(np.asarray(image))
    return out
