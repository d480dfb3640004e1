"""RLDS episodes -> batches of n-step training transitions (rlds + tf.data).

For an episode with T transitions (T+1 RLDS steps; rewards r_t, step discounts d_t in {0, 1},
d_t = 0 only when a_t reached the terminal state) and transition t, let k = min(n, T - t):

    reward      = sum_{j<k} g^j r_{t+j}
    discount    = g^k * prod_{j<k} d_{t+j}        (g^k, or 0 if a terminal is in the window)
    is_terminal = prod_{j<k} d_{t+j} == 0
    next_observation = o_{t+k}
    mc_return   = sum_{j=t}^{T-1} g^{j-t} r_j     (Monte-Carlo return-to-go)

With observation history W > 1 (`DataConfig.history`), o_t above is the window
(o_{t-W+1}, ..., o_t) of the episode's steps, padded at the episode's start by repeating its
first observation (qtransformer/model/history.py), and next_observation is the window ending at
o_{t+k}: state [W, S], image [W, H, W, 3]; the instruction stays one string.

Each episode is turned into its transitions in one batched computation (the whole episode's
steps are batched with `rlds.transformations.batch`-style `steps.batch`, then vectorised tf ops
build all T transitions, windows included: one gather of clipped step indices), inside
`interleave`. The per-transition dataset is cached in memory
(offline datasets are small), then shuffled across episodes, repeated, batched and prefetched.
Element shapes are listed in `make_transition_dataset`.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import tensorflow as tf

from qtransformer.datasets.rlds_io import DatasetMeta, load_dataset
from qtransformer.model import history as history_lib
from qtransformer.model.tokenizer import ActionTokenizer
from qtransformer.training.config import DataConfig

_MAX_EPISODE_STEPS = 1_000_000  # "the whole episode" for steps.batch
EPISODE_LOG_ENV = "QTRANSFORMER_EPISODE_LOG"


def episode_transitions(steps: dict, n_step: int, gamma: float, history: int = 1) -> dict:
    """All T transitions of one episode from its T+1 batched RLDS steps (formulas above).

    Args:
      steps: the episode's steps batched along axis 0 (`observation`, `action`, `reward`,
        `discount`, `language_instruction`, ...), each with leading dimension T+1.
      n_step: n; gamma: g.
      history: W; > 1 gives state and image a window axis (start padded, see above).
    Returns:
      dict of tensors with leading dimension T (observation / next_observation dicts hold
      `state` [T, S] or [T, W, S], `instruction` [T], and `image` [T, (W,) H, W, 3] if
      present).
    """
    reward_all = tf.cast(steps["reward"], tf.float32)
    t_len = tf.shape(reward_all)[0] - 1  # T transitions
    rewards = reward_all[:-1]
    discounts = tf.cast(steps["discount"], tf.float32)[:-1]
    t = tf.range(t_len)
    j = tf.range(n_step)
    k = tf.minimum(n_step, t_len - t)  # [T]
    idx = t[:, None] + j[None, :]  # [T, n]; indices past T-1 are masked out
    mask = j[None, :] < k[:, None]
    safe = tf.minimum(idx, tf.maximum(t_len - 1, 0))
    powers = tf.pow(tf.constant(gamma, tf.float32), tf.cast(j, tf.float32))  # g^j
    window_r = tf.where(mask, tf.gather(rewards, safe), 0.0)
    window_d = tf.where(mask, tf.gather(discounts, safe), 1.0)
    alive = tf.reduce_prod(window_d, axis=1)
    n_reward = tf.reduce_sum(window_r * powers[None, :], axis=1)
    discount = tf.pow(tf.constant(gamma, tf.float32), tf.cast(k, tf.float32)) * alive

    # Return-to-go G_t = sum_{j>=t} g^{j-t} r_j as an upper-triangular [T, T] weight matrix.
    exponent = tf.cast(t[None, :] - t[:, None], tf.float32)
    weights = tf.where(exponent >= 0, tf.pow(tf.constant(gamma, tf.float32), exponent), 0.0)
    mc_return = tf.linalg.matvec(weights, rewards)

    observation = dict(steps["observation"])
    if history > 1:  # [T+1, ...] -> [T+1, W, ...]: row t ends at step t, start padded
        for key in history_lib.NUMERIC_KEYS:
            if key in observation:
                observation[key] = history_lib.episode_windows(observation[key], history)
    observation["instruction"] = steps["language_instruction"]
    current = tf.nest.map_structure(lambda x: x[:-1], observation)
    following = tf.nest.map_structure(lambda x: tf.gather(x, t + k), observation)
    return {
        "observation": current,
        "action": tf.cast(steps["action"][:-1], tf.float32),
        "reward": n_reward,
        "discount": discount,
        "next_observation": following,
        "mc_return": mc_return,
        "is_terminal": alive == 0.0,
    }


def transitions_from_episodes(
    episodes: tf.data.Dataset, n_step: int, gamma: float, history: int = 1
):
    """Flat dataset of unbatched transitions from a dataset of RLDS episodes."""

    def per_episode(episode):
        steps = episode["steps"].batch(_MAX_EPISODE_STEPS)
        steps = steps.map(lambda s: episode_transitions(s, n_step, gamma, history))
        return steps.unbatch()

    return episodes.interleave(
        per_episode, cycle_length=4, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )


def make_transition_dataset(
    dataset_dir: str | Path,
    data_config: DataConfig,
    *,
    repeat: bool = True,
    shuffle: bool = True,
    seed: int = 0,
    batch_size: int | None = None,
    cache: bool = True,
    shard: tuple[int, int] | None = None,
) -> tuple[tf.data.Dataset, DatasetMeta]:
    """Training batches from an RLDS dataset directory.

    shard=(n, i): only episodes with index % n == i (see `shard_episodes`); None: all.

    Elements (B = batch_size, default data_config.batch_size; drop_remainder=True):
      observation / next_observation: {state float32[B,S], instruction string[B],
        image uint8[B,H,W,3] if the dataset has images}; with data_config.history = W > 1,
        state float32[B,W,S] and image uint8[B,W,H,W,3] (windows, see the module docstring;
        the cache then holds each image up to 2W times: mind memory with pixels)
      action float32[B,D], action_bins int32[B,D] (ActionTokenizer with the dataset's bounds
      and data_config.action_bins), reward, discount, mc_return float32[B], is_terminal bool[B].
    """
    episodes, meta = load_dataset(dataset_dir)
    if shard is not None:
        episodes = shard_episodes(episodes, *shard)
    if data_config.success_only:  # bc_filtered: successful episodes only
        episodes = episodes.filter(lambda ep: tf.cast(ep["episode_metadata"]["success"], tf.bool))
    tokenizer = ActionTokenizer(meta.action_low, meta.action_high, data_config.action_bins)
    ds = transitions_from_episodes(
        episodes, data_config.n_step, data_config.gamma, data_config.history
    )
    if cache:
        ds = ds.cache()  # decoded transitions stay in memory: later epochs skip parsing
    if shuffle:
        ds = ds.shuffle(data_config.shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size or data_config.batch_size, drop_remainder=True)

    def add_bins(batch):
        batch["action_bins"] = tokenizer.tokenize(batch["action"])
        return batch

    ds = ds.map(add_bins, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE), meta


def shard_episodes(episodes: tf.data.Dataset, num_shards: int, index: int) -> tf.data.Dataset:
    """Episodes number k (order of the dataset files) with k % num_shards == index.

    If the environment variable QTRANSFORMER_EPISODE_LOG names a folder, the ids of the
    episodes this shard reads are appended there to `shard-<index>-of-<num_shards>.txt`
    (one per line, on first read: a check that workers consume disjoint shards).
    """
    ids = episodes.enumerate()
    if num_shards > 1:
        ids = ids.shard(num_shards, index)
    log_dir = os.environ.get(EPISODE_LOG_ENV)
    if log_dir:
        path = Path(log_dir) / f"shard-{index}-of-{num_shards}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)

        def record(k):
            with open(path, "a") as f:
                f.write(f"{int(k)}\n")
            return True

        ids = ids.filter(lambda k, _: tf.py_function(record, [k], tf.bool))
    return ids.map(lambda _, episode: episode)


def distributed_transition_dataset(
    strategy, dataset_dir: str | Path, data_config: DataConfig, *, seed: int = 0
):
    """Per-worker training input: `strategy.distribute_datasets_from_function`.

    Each input pipeline (one per worker) reads only its shard of the episodes
    (InputContext.input_pipeline_id of num_input_pipelines, by episode) and batches
    per-replica batch = data_config.batch_size / num_replicas_in_sync, so `batch_size` is the
    global batch on 1 or N workers. With one pipeline and one replica the batches are those of
    `make_transition_dataset` (same seed, same order). Elements are (batch, ()) per replica,
    as the tf_agents Learner expects.
    """
    replicas = strategy.num_replicas_in_sync
    if data_config.batch_size % replicas:
        raise ValueError(
            f"--batch-size {data_config.batch_size} (the global batch) must be divisible by "
            f"the {replicas} replicas of the strategy"
        )

    def dataset_fn(ctx: tf.distribute.InputContext) -> tf.data.Dataset:
        shard = (ctx.num_input_pipelines, ctx.input_pipeline_id)
        per_replica = ctx.get_per_replica_batch_size(data_config.batch_size)
        ds, _ = make_transition_dataset(
            dataset_dir, data_config, seed=seed, batch_size=per_replica, shard=shard
        )
        return ds.map(lambda batch: (batch, ()))

    return strategy.distribute_datasets_from_function(dataset_fn)


def measure_throughput(
    dataset_dir: str | Path, data_config: DataConfig, batches: int = 50, warmup: int = 5
) -> dict:
    """Transitions per second the pipeline delivers (after `warmup` batches fill the cache).

    Returns {"transitions_per_s", "batches_per_s", "batch_size", "batches", "first_batch_s"}.
    """
    start = time.perf_counter()
    ds, _ = make_transition_dataset(dataset_dir, data_config)
    it = iter(ds)
    next(it)
    first = time.perf_counter() - start
    for _ in range(warmup):
        next(it)
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    elapsed = time.perf_counter() - start
    return {
        "transitions_per_s": batches * data_config.batch_size / elapsed,
        "batches_per_s": batches / elapsed,
        "batch_size": data_config.batch_size,
        "batches": batches,
        "first_batch_s": first,
    }
