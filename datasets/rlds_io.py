"""Write and read RLDS datasets in TFDS format, atomically, with their action bounds.

On disk, DIR is a plain TFDS dataset directory (`tfds.builder_from_directory(DIR)`):

    DIR/dataset_info.json     features, splits, episode count per shard (TFDS)
    DIR/features.json         feature structure (TFDS)
    DIR/metadata.json         our DatasetMeta fields: action_low/high, state_dim, image_shape,
                              instructions, tasks, num_episodes, obs_mode
                              (tfds.core.MetadataDict), and the reward statistics of
                              datasets/conventions.py (reward_range, return_range at
                              return_gamma, value_range, terminal/timeout episode counts)
                              that `train` derives the value support from
    DIR/qtransformer_rlds-train.tfrecord-0000k-of-0000n   shards of `episodes_per_shard`

Each example is one episode: `steps` (observation/state float32[S], optional
observation/image uint8[H,W,3], action float32[D], reward, discount float32, is_first,
is_last, is_terminal bool, language_instruction string) and `episode_metadata`
(task string, success bool, source string). Writing goes to a hidden sibling directory that
is renamed onto DIR only once complete, so an interrupted write leaves nothing at DIR. One
writer at a time: `.DIR.lock` beside DIR (`lock_output`, qtransformer/commands/output_lock.py).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from qtransformer.commands import output_lock
from qtransformer.datasets.conventions import RewardStats
from qtransformer.datasets.episode import Episode

NAME = "qtransformer_rlds"
_STAT_KEYS = (
    "reward_range", "return_gamma", "return_range", "truncated_reward", "value_range",
    "terminal_episodes", "timeout_episodes",
)  # fmt: skip
_FLUSH_EVERY = 32  # episodes per SequentialWriter.add_examples (it rewrites dataset_info each call)


@dataclasses.dataclass(frozen=True)
class DatasetMeta:
    """What training and evaluation need to know about a dataset, besides its episodes."""

    path: Path
    num_episodes: int
    action_low: np.ndarray
    action_high: np.ndarray
    state_dim: int
    image_shape: tuple | None
    instructions: list[str]
    tasks: list[str]
    num_transitions: int = 0
    obs_mode: str | None = None  # sim observation mode (sim_envs/observations.py); None: unknown
    # How sim data was recorded (collect): {"replay", "demo_fraction", "noise", ...}; {}: unknown.
    protocol: dict = dataclasses.field(default_factory=dict)
    reward_stats: dict = dataclasses.field(default_factory=dict)  # RewardStats.as_dict()


def check_output_dir(out_dir: str | Path, overwrite: bool) -> Path:
    """Refuse a non-empty `out_dir` unless `overwrite` (checked before any work is done)."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"output path {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"output directory {out} is not empty (pass --overwrite)")
    if out.is_dir() and any(out.iterdir()) and not (out / "dataset_info.json").is_file():
        # --overwrite replaces an earlier dataset, never a folder of something else.
        raise FileExistsError(
            f"--out {out} is not empty and holds no dataset (no dataset_info.json): "
            "--overwrite only replaces a dataset; choose another --out"
        )
    return out


def lock_output(out_dir: str | Path) -> output_lock.OutputLock:
    """Lock dataset `out_dir` for this process, or raise OutputInUse naming the holder.

    The lock is `.NAME.lock` beside DIR (DIR itself appears only once complete). Taking it
    removes the temporary folders (`.NAME.tmp-*`) an interrupted writer left beside DIR.
    """
    out = Path(out_dir)
    temps = [f".{out.name}.tmp-*"] + ([f".{out.name}.old-*"] if out.exists() else [])
    return output_lock.acquire(out, beside=True, temps=temps)


class DatasetWriter:
    """Context manager writing `Episode`s into a TFDS RLDS dataset at `out_dir`.

    Episodes go to a temporary sibling `.DIR.tmp-XXXX`; on a clean exit the metadata is
    written and the directory renamed onto `out_dir` (replacing an old one only then). On an
    exception (including KeyboardInterrupt) the temporary directory is deleted; a failed write
    (disk full) becomes WriteFailed naming `out_dir`. `out_dir` is locked meanwhile.
    """

    def __init__(
        self,
        out_dir: str | Path,
        *,
        state_dim: int,
        action_low,
        action_high,
        image_shape: tuple | None = None,
        overwrite: bool = False,
        episodes_per_shard: int = 500,
        description: str = "",
        obs_mode: str | None = None,
        gamma: float = 0.98,
        protocol: dict | None = None,
    ):
        self.out = check_output_dir(out_dir, overwrite).resolve()
        self.obs_mode = obs_mode
        self.protocol = dict(protocol or {})
        self.action_low = np.asarray(action_low, np.float32).reshape(-1)
        self.action_high = np.asarray(action_high, np.float32).reshape(-1)
        self.state_dim, self.image_shape = int(state_dim), image_shape
        self.episodes_per_shard, self.description = episodes_per_shard, description
        self.num_episodes = self.num_transitions = 0
        self._instructions: set[str] = set()
        self._tasks: set[str] = set()
        self._pending: list[dict] = []
        self._rewards = RewardStats(gamma)  # return_range at this discount, for metadata

    def __enter__(self) -> DatasetWriter:
        self._lock = lock_output(self.out)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.out.parent / f".{self.out.name}.tmp-{uuid.uuid4().hex[:8]}"
        try:
            with output_lock.writing(self.out, remove=[self.tmp]):
                self._open()
        except BaseException:
            self._lock.release()
            raise
        return self

    def _open(self) -> None:
        self.tmp.mkdir()
        self._info = tfds.rlds.rlds_base.build_info(
            self._config(),
            tfds.core.dataset_info.DatasetIdentity(
                name=NAME,
                version=tfds.core.Version("1.0.0"),
                data_dir=str(self.tmp),
                module_name="",
            ),
            ds_metadata={"writer": "qtransformer.datasets"},  # non-empty: a MetadataDict
        )
        self._writer = tfds.core.SequentialWriter(self._info, self.episodes_per_shard)
        self._writer.initialize_splits(["train"])  # writes the first metadata files

    def _config(self) -> tfds.rlds.rlds_base.DatasetConfig:
        dims = len(self.action_low)
        observation = {"state": tfds.features.Tensor(shape=(self.state_dim,), dtype=np.float32)}
        if self.image_shape is not None:
            observation["image"] = tfds.features.Image(shape=tuple(self.image_shape))
        scalar = tfds.features.Scalar(dtype=np.float32)
        return tfds.rlds.rlds_base.DatasetConfig(
            name=NAME,
            overall_description=self.description or "Q-Transformer RLDS episodes",
            observation_info=tfds.features.FeaturesDict(observation),
            action_info=tfds.features.Tensor(shape=(dims,), dtype=np.float32),
            reward_info=scalar,
            discount_info=scalar,
            step_metadata_info={"language_instruction": tfds.features.Text()},
            episode_metadata_info={
                "episode_metadata": tfds.features.FeaturesDict(
                    {
                        "task": tfds.features.Text(),
                        "success": tfds.features.Scalar(dtype=np.bool_),
                        "source": tfds.features.Text(),
                    }
                )
            },
        )

    def add(self, episode: Episode) -> None:
        self._pending.append(episode.to_steps())
        self.num_episodes += 1
        self.num_transitions += episode.length
        self._instructions.add(episode.instruction)
        self._tasks.add(episode.task)
        self._rewards.add(episode.rewards, episode.terminal)
        if len(self._pending) >= _FLUSH_EVERY:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._writer.add_examples({"train": self._pending})
            self._pending = []

    def __exit__(self, exc_type, exc, tb) -> None:
        with self._lock, output_lock.writing(self.out, remove=[self.tmp]):
            if exc is not None:
                raise exc  # removes self.tmp; a failed write becomes WriteFailed
            self._close()

    def _close(self) -> None:
        if self.num_episodes == 0:
            raise ValueError(f"no episodes to write to {self.out}")
        self._flush()
        self._info.metadata.update(self.meta_dict())
        self._writer.close_all()  # writes dataset_info.json, features.json, metadata.json
        if self.out.exists():  # --overwrite: the new dataset is complete, swap it in
            old = self.out.parent / f".{self.out.name}.old-{uuid.uuid4().hex[:8]}"
            self.out.rename(old)
            self.tmp.rename(self.out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            self.tmp.rename(self.out)

    def meta_dict(self) -> dict:
        return {
            "num_episodes": self.num_episodes,
            "num_transitions": self.num_transitions,
            "action_low": self.action_low.tolist(),
            "action_high": self.action_high.tolist(),
            "state_dim": self.state_dim,
            "image_shape": list(self.image_shape) if self.image_shape else None,
            "instructions": sorted(self._instructions),
            "tasks": sorted(self._tasks),
            "obs_mode": self.obs_mode,
            "protocol": self.protocol,
        } | self._rewards.as_dict()


def write_dataset(
    out_dir: str | Path,
    episodes: Iterable[Episode],
    *,
    action_low,
    action_high,
    overwrite: bool = False,
    episodes_per_shard: int = 500,
    description: str = "",
    obs_mode: str | None = None,
    protocol: dict | None = None,
) -> Path:
    """Write `episodes` (shapes taken from the first one) atomically; returns the path.

    `obs_mode` (sim datasets: the `collect --obs` mode) and `protocol` (how collect recorded
    them: replay, demo_fraction, noise) go into metadata.json.
    """
    episodes = iter(episodes)
    first = next(episodes, None)
    if first is None:
        raise ValueError(f"no episodes to write to {out_dir}")
    image_shape = None if first.images is None else tuple(first.images.shape[1:])
    with DatasetWriter(
        out_dir,
        state_dim=first.states.shape[1],
        action_low=action_low,
        action_high=action_high,
        image_shape=image_shape,
        overwrite=overwrite,
        episodes_per_shard=episodes_per_shard,
        description=description,
        obs_mode=obs_mode,
        protocol=protocol,
    ) as writer:
        writer.add(first)
        for episode in episodes:
            writer.add(episode)
    return writer.out


def read_meta(dataset_dir: str | Path) -> DatasetMeta:
    """DatasetMeta from DIR/metadata.json; raises naming DIR if it is not our dataset."""
    path = Path(dataset_dir)
    if not (path / "dataset_info.json").is_file():
        raise FileNotFoundError(f"{path} is not a TFDS dataset directory (no dataset_info.json)")
    try:
        raw = json.loads((path / "metadata.json").read_text())
        return DatasetMeta(
            path=path,
            num_episodes=int(raw["num_episodes"]),
            action_low=np.asarray(raw["action_low"], np.float32),
            action_high=np.asarray(raw["action_high"], np.float32),
            state_dim=int(raw["state_dim"]),
            image_shape=tuple(raw["image_shape"]) if raw["image_shape"] else None,
            instructions=list(raw["instructions"]),
            tasks=list(raw["tasks"]),
            num_transitions=int(raw.get("num_transitions", 0)),
            obs_mode=raw.get("obs_mode"),
            protocol=dict(raw.get("protocol") or {}),
            reward_stats={k: raw[k] for k in _STAT_KEYS if k in raw},
        )
    except (OSError, KeyError, TypeError, json.JSONDecodeError) as e:
        raise ValueError(
            f"{path} has no valid qtransformer metadata.json (action bounds etc.): {e}; "
            "convert it with `qtransformer convert --format rlds`"
        ) from e


def load_dataset(dataset_dir: str | Path) -> tuple[tf.data.Dataset, DatasetMeta]:
    """(episodes, meta): the `train` split as a tf.data.Dataset of RLDS episodes."""
    meta = read_meta(dataset_dir)
    episodes = tfds.builder_from_directory(str(dataset_dir)).as_dataset(split="train")
    return episodes, meta


def read_episodes(dataset_dir: str | Path) -> list[Episode]:
    """All episodes of a dataset as numpy `Episode`s (for tests and small datasets)."""
    episodes, _ = load_dataset(dataset_dir)
    out = []
    for example in episodes:
        steps = tfds.as_numpy(example["steps"].batch(1_000_000).get_single_element())
        meta = tfds.as_numpy(example["episode_metadata"])
        out.append(Episode.from_steps({"steps": steps, "episode_metadata": meta}))
    return out
