"""Readers for demos recorded elsewhere, and the validation every episode passes before writing.

Each reader yields `RawEpisode`s (arrays as found, no checks); `to_episode` validates one and
returns an `Episode`, raising `BadEpisode` naming the file, episode and key that is wrong.
Layouts are documented in datasets/convert.py. Inputs are opened read-only.
"""

from __future__ import annotations

import dataclasses
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from qtransformer.datasets.episode import Episode


class BadEpisode(ValueError):
    """An input episode that cannot be converted; the message names file, episode and key."""

    def __init__(self, file, episode, key, problem):
        super().__init__(f"{file}: episode {episode}: key '{key}': {problem}")


@dataclasses.dataclass
class RawEpisode:
    """Arrays as read. `obs`: key -> [T or T+1, ...]; `final_obs`: key -> o_T if known."""

    file: str
    name: str
    actions: np.ndarray | None
    rewards: np.ndarray | None
    obs: dict
    final_obs: dict | None = None
    terminals: np.ndarray | None = None
    instruction: str | None = None
    task: str | None = None
    source: str = ""
    is_first: np.ndarray | None = None  # RLDS inputs: checked to be one per episode
    is_last: np.ndarray | None = None
    success: bool | None = None
    error: tuple[str, str] | None = None  # (key, problem) found by the reader
    obs_prefix: str = "obs/"  # how the input names observation keys, for error messages
    terminals_key: str = "terminals"
    step_rewards: np.ndarray | None = None  # RLDS inputs: T+1 per-step rewards, not aligned yet
    step_discounts: np.ndarray | None = None  # RLDS inputs: T+1 per-step discounts if present


def _text(value) -> str:
    value = np.asarray(value).reshape(-1)[0] if np.ndim(value) else value
    return value.decode() if isinstance(value, bytes | np.bytes_) else str(value)


def _is_image(array: np.ndarray) -> bool:
    return array.ndim == 4 and array.shape[-1] == 3 and array.dtype == np.uint8


def read_npz(folder: Path) -> Iterator[RawEpisode]:
    files = sorted(folder.glob("*.npz"))
    if not files:
        raise FileNotFoundError(f"no .npz files in {folder}")
    for path in files:
        arrays = _read_npz_file(path)
        if "observations" in arrays:
            obs = {"observations": arrays.pop("observations")}
        else:
            obs = {k[4:]: arrays.pop(k) for k in list(arrays) if k.startswith("obs/")}
        final = {k[9:]: v[-1] for k, v in arrays.items() if k.startswith("next_obs/")}
        if "next_observations" in arrays:
            final = {"observations": arrays["next_observations"][-1]}
        raw = RawEpisode(
            file=str(path),
            name="0",
            actions=arrays.get("actions"),
            rewards=arrays.get("rewards"),
            obs=obs,
            final_obs=final or None,
            terminals=arrays.get("terminals"),
            instruction=_text(arrays["language_instruction"])
            if "language_instruction" in arrays
            else None,
            task=_text(arrays["task"]) if "task" in arrays else None,
            source=f"npz:{path.name}",
        )
        yield raw


def read_hdf5(path: Path) -> Iterator[RawEpisode]:
    import h5py

    with h5py.File(path, "r") as f:
        if "data" not in f:
            raise ValueError(f"{path}: no 'data' group (expected the robomimic layout)")
        names = sorted(
            f["data"].keys(),
            key=lambda n: [int(x) if x.isdigit() else x for x in re.split(r"(\d+)", n)],
        )
        for name in names:
            demo = f["data"][name]
            obs = {k: demo["obs"][k][()] for k in demo["obs"]} if "obs" in demo else {}
            final = (
                {k: demo["next_obs"][k][-1] for k in demo["next_obs"]}
                if "next_obs" in demo
                else None
            )
            attrs = dict(demo.attrs)
            yield RawEpisode(
                file=str(path),
                name=name,
                actions=demo["actions"][()] if "actions" in demo else None,
                rewards=demo["rewards"][()] if "rewards" in demo else None,
                obs=obs,
                final_obs=final,
                terminals=demo["dones"][()] if "dones" in demo else None,
                instruction=_text(attrs["language_instruction"])
                if "language_instruction" in attrs
                else None,
                source=f"hdf5:{path.name}:{name}",
                terminals_key="dones",
            )


def _lookup(tree: dict, path: str):
    node = tree
    for part in path.split("/"):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def read_rlds(folder: Path, mapping: dict[str, str]) -> Iterator[RawEpisode]:
    """Episodes of a TFDS RLDS directory; `mapping`: our key path -> their key path."""
    import tensorflow_datasets as tfds

    if not (folder / "dataset_info.json").is_file():
        raise FileNotFoundError(f"{folder} is not a TFDS dataset directory (no dataset_info.json)")
    episodes = tfds.builder_from_directory(str(folder)).as_dataset(split="train")
    for index, example in enumerate(episodes):
        steps = tfds.as_numpy(example["steps"].batch(1_000_000).get_single_element())
        rest = tfds.as_numpy({k: v for k, v in example.items() if k != "steps"})

        def step(key, _steps=steps):
            return _lookup(_steps, mapping.get(key, key))

        raw = RawEpisode(
            file=str(folder),
            name=str(index),
            actions=None,
            rewards=None,
            obs={},
            source=f"rlds:{folder.name}",
            obs_prefix="observation/",
            terminals_key="is_terminal",
        )
        for key in ("action", "reward", "is_first", "is_last", "observation/state"):
            if step(key) is None:
                raw.error = (key if key not in mapping else f"{key}={mapping[key]}", "missing")
                break
        else:
            state, image = step("observation/state"), step("observation/image")
            raw.obs = {"state": state} | ({"image": image} if image is not None else {})
            raw.actions = step("action")[:-1]
            # Rewards are aligned later (conventions.align_rewards: step or envlogger).
            raw.step_rewards = np.asarray(step("reward"), np.float32).reshape(-1)
            discount = step("discount")
            raw.step_discounts = None if discount is None else np.asarray(discount).reshape(-1)
            raw.is_first, raw.is_last = step("is_first"), step("is_last")
            terminal = step("is_terminal")
            if terminal is None and raw.step_discounts is not None:
                terminal = raw.step_discounts == 0  # no is_terminal: a 0 final discount ends it
            raw.terminals = np.zeros(len(raw.actions), bool) if terminal is not None else None
            if terminal is not None and len(raw.terminals):
                raw.terminals[-1] = bool(terminal[-1])
            text = step("language_instruction")
            raw.instruction = _text(text[0]) if text is not None and len(text) else None
            for field in ("task", "source", "success"):
                value = _lookup(
                    rest, mapping.get(f"episode_metadata/{field}", f"episode_metadata/{field}")
                )
                if value is not None:
                    setattr(raw, field, bool(value) if field == "success" else _text(value))
        yield raw


def to_episode(
    raw: RawEpisode,
    low,
    high,
    *,
    clip: bool,
    state_keys=None,
    image_key=None,
    task: str = "",
    instruction: str = "",
) -> Episode:
    """Validate `raw` (lengths, finiteness, bounds, is_first/is_last) and build an Episode."""

    def bad(key, problem):
        return BadEpisode(raw.file, raw.name, key, problem)

    if raw.error:
        raise bad(*raw.error)
    for key, value in (("actions", raw.actions), ("rewards", raw.rewards)):
        if value is None:
            raise bad(key, "missing")
    actions = np.asarray(raw.actions)
    if actions.ndim != 2 or actions.shape[0] == 0:
        raise bad("actions", f"expected shape [T, D] with T >= 1, got {actions.shape}")
    t, d = actions.shape
    rewards = np.asarray(raw.rewards)
    if rewards.ndim == 2 and rewards.shape[1] == 1:  # [T, 1] columns are common
        rewards = rewards[:, 0]
    if rewards.ndim != 1:
        raise bad("rewards", f"expected shape [T], got {rewards.shape}")
    if rewards.shape != (t,):
        raise bad("rewards", f"length {rewards.shape[0]} != {t} actions")
    if not raw.obs:
        raise bad("observations", "missing (expected 'observations' or 'obs/<key>')")
    if image_key is None and "image" in raw.obs and _is_image(np.asarray(raw.obs["image"])):
        image_key = "image"

    def label(key):
        return key if key == "observations" else raw.obs_prefix + key

    if image_key is not None and image_key not in raw.obs:
        raise bad(label(image_key), "missing")
    keys = state_keys or sorted(
        k for k in raw.obs if k != image_key and not _is_image(np.asarray(raw.obs[k]))
    )
    parts = []
    for key in [*keys, *([image_key] if image_key else [])]:
        if key not in raw.obs:
            raise bad(label(key), "missing")
        value = np.asarray(raw.obs[key])
        if len(value) == t and raw.final_obs is not None and key in raw.final_obs:
            value = np.concatenate([value, np.asarray(raw.final_obs[key])[None]])
        elif len(value) == t:  # no o_T recorded: repeat the last observation (documented)
            value = np.concatenate([value, value[-1:]])
        if len(value) != t + 1:
            raise bad(label(key), f"length {len(value)}, expected {t} or {t + 1} for {t} actions")
        if key != image_key:
            value = value.reshape(t + 1, -1).astype(np.float64)
            _check_finite(value, label(key), bad)
            parts.append(value.astype(np.float32))
    states = np.concatenate(parts, axis=1)
    images = None
    if image_key:
        images = np.asarray(raw.obs[image_key])
        images = images if len(images) == t + 1 else np.concatenate([images, images[-1:]])
    for key, value in (("actions", actions), ("rewards", rewards)):
        _check_finite(value.astype(np.float64), key, bad)
    low = np.broadcast_to(np.asarray(low, np.float32), (d,))
    high = np.broadcast_to(np.asarray(high, np.float32), (d,))
    outside = (actions < low - 1e-6) | (actions > high + 1e-6)
    if outside.any() and not clip:
        step, dim = np.argwhere(outside)[0]
        raise bad(
            "actions",
            f"value {actions[step, dim]:.4g} at step {step}, dim {dim} is outside "
            f"[{low[dim]:.4g}, {high[dim]:.4g}] (set --action-low/--action-high or --clip-actions)",
        )
    actions = np.clip(actions, low, high)
    if raw.is_first is not None:
        for key, flags, at in (("is_first", raw.is_first, 0), ("is_last", raw.is_last, t)):
            hits = np.flatnonzero(np.asarray(flags))
            if hits.tolist() != [at]:
                raise bad(
                    key, f"expected exactly one True at step {at}, found at steps {hits.tolist()}"
                )
    terminal = rewards[-1] > 0
    if raw.terminals is not None:
        flags = np.asarray(raw.terminals).astype(bool).reshape(-1)
        if flags.shape != (t,):
            raise bad(raw.terminals_key, f"length {flags.shape[0]} != {t} actions")
        if flags[:-1].any():
            raise bad(
                raw.terminals_key,
                f"terminal before the last step (step {np.flatnonzero(flags)[0]})",
            )
        terminal = bool(flags[-1])
    return Episode(
        states=states,
        actions=actions,
        rewards=rewards,
        terminal=terminal,
        images=images,
        instruction=raw.instruction or instruction,
        task=raw.task or task,
        source=raw.source,
        success=raw.success if raw.success is not None else bool(terminal or rewards.max() > 0),
    )


def _check_finite(value: np.ndarray, key: str, bad) -> None:
    wrong = ~np.isfinite(value)
    if wrong.any():
        where = np.argwhere(wrong)[0].tolist()
        raise bad(key, f"non-finite value {value[wrong][0]} at index {where}")


def _read_npz_file(path: Path) -> dict:
    """The arrays of one .npz file; ValueError naming it if numpy cannot read it."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (OSError, EOFError, ValueError, AttributeError, zipfile.BadZipFile) as e:
        raise ValueError(f"{path}: not a readable .npz archive ({e})") from e
