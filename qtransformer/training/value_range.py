"""The value range [v_min, v_max] from the data: rewards, episode ends and the discount.

`convert` and `collect` store in DIR/metadata.json the reward range, the range of the
Monte-Carlo returns at `return_gamma` and the value range derived from them
(`datasets.conventions.value_range`: the returns' range with 0 included, widened to
r / (1 - gamma) when a time-out episode has rewards, since values then bootstrap past the
recorded returns). `train` calls `resolve` at start:

- `ModelConfig.v_from_data` (the default): v_min, v_max := the data's value range (read from
  metadata.json when its return_gamma is the training gamma, else recomputed from the
  rewards in one pass that skips image decoding). Sparse 0/1 data gives [0, 1].
- `--v-min/--v-max` (v_from_data false): the given range is used, and refused with one line
  if it cannot hold the data's values (HL-Gauss and two-hot would clip the targets; the
  sigmoid of `mse` cannot reach them).

The value bins then cover [v_min, v_max] plus `ModelConfig.support_padding` bins beyond each
end (`ModelConfig.value_support`). Behaviour cloning has no values: nothing is checked.
"""

from __future__ import annotations

import math
from pathlib import Path

from qtransformer.training.config import TrainConfig

_TOLERANCE = 1e-5


def data_value_range(dataset_dir: str | Path, gamma: float) -> tuple[float, float, dict]:
    """(lo, hi, stats) of the dataset's values at discount `gamma` (module docstring)."""
    from qtransformer.datasets import read_meta

    meta = read_meta(dataset_dir)
    stats = dict(meta.reward_stats)
    if not stats or abs(float(stats["return_gamma"]) - gamma) > 1e-9:
        stats = _scan_rewards(dataset_dir, gamma, has_image=meta.image_shape is not None)
    lo, hi = stats["value_range"]
    return float(lo), float(hi), stats


def _scan_rewards(dataset_dir, gamma: float, has_image: bool) -> dict:
    """RewardStats of every episode, reading only rewards and the terminal flag."""
    import tensorflow_datasets as tfds

    from qtransformer.datasets.conventions import RewardStats

    decoders = {"steps": {"observation": {"image": tfds.decode.SkipDecoding()}}}
    episodes = tfds.builder_from_directory(str(dataset_dir)).as_dataset(
        split="train", decoders=decoders if has_image else None
    )
    stats = RewardStats(gamma)
    for episode in episodes:
        steps = episode["steps"].map(lambda s: (s["reward"], s["is_terminal"]))
        rewards, terminal = steps.batch(1_000_000).get_single_element()
        stats.add(rewards.numpy()[:-1], bool(terminal.numpy()[-1]))
    if stats.terminal + stats.timeout == 0:
        raise ValueError(f"{dataset_dir} has no episodes")
    return stats.as_dict()


def resolve(config: TrainConfig, dataset_dir: str | Path) -> tuple[TrainConfig, str]:
    """(config with the value range to train with, one line saying what it is and why)."""
    if config.loss == "bc":
        return config, ""
    gamma, model = config.data.gamma, config.model
    lo, hi, stats = data_value_range(dataset_dir, gamma)
    if not (math.isfinite(lo) and math.isfinite(hi)):  # NaN rewards: training will stop on them
        return config, f"the rewards of {dataset_dir} are not finite: value range left as set"
    needed = f"[{lo:.4g}, {hi:.4g}] (returns at gamma {gamma:g}: " + (
        f"[{stats['return_range'][0]:.4g}, {stats['return_range'][1]:.4g}]"
        + (", time-outs with rewards bootstrap up to r/(1-gamma)" if stats["truncated_reward"]
           else "") + ")"
    )  # fmt: skip
    if model.v_from_data:
        if hi - lo < _TOLERANCE:  # all-zero rewards: any non-empty range holds them
            hi = lo + 1.0
        config = config.replace(v_min=lo, v_max=hi)
        where = f"from the dataset {needed}"
    else:
        if model.v_min > lo + _TOLERANCE * max(1.0, abs(lo)) or model.v_max < hi - (
            _TOLERANCE * max(1.0, abs(hi))
        ):
            raise ValueError(
                f"--v-min/--v-max [{model.v_min:g}, {model.v_max:g}] cannot hold the values of "
                f"{dataset_dir}, which need {needed}; widen them, or leave both out to use "
                "the dataset's range"
            )
        where = f"from --v-min/--v-max; the dataset needs {needed}"
    message = f"value range [{config.model.v_min:.4g}, {config.model.v_max:.4g}] {where}"
    support = getattr(config.model, "value_support", None)  # padded bins (ModelConfig)
    if support is not None and config.loss in ("hl_gauss", "two_hot", "c51"):
        a, b = support()
        message += f"; {model.value_bins} value bins on [{a:.4g}, {b:.4g}]"
    return config, message
