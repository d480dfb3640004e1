"""Checks before a run trains in an existing workdir: same model shape, same dataset spec.

`check_workdir_config` refuses a workdir whose config.json has another model shape (its
checkpoints would not restore) and (re)writes config.json; `check_resume` refuses a dataset of
another spec and skips a corrupt newest checkpoint (checkpoints.py) before the Learner restores.
"""

from __future__ import annotations

import json
from pathlib import Path

from qtransformer.commands import output_lock
from qtransformer.training.config import CLASSIFICATION, TrainConfig


def model_shape(config: TrainConfig) -> dict:
    """The fields that fix the network's variables: a checkpoint only restores if they match."""
    model = config.model
    return {
        "action_bins": config.data.action_bins,
        "embed_dim": model.embed_dim,
        "num_layers": model.num_layers,
        "num_heads": model.num_heads,
        "head": model.head,
        "head_rank": model.head_rank,
        "value_bins": model.value_bins if config.loss in CLASSIFICATION else None,
        "history": config.data.history,  # W > 1 adds the window-step embedding
    }


def check_workdir_config(workdir: Path, config: TrainConfig) -> None:
    """Refuse a workdir trained with another model shape; then (re)write its config.json."""
    path = Path(workdir) / "config.json"
    if path.exists():
        old = TrainConfig.from_file(path)
        before, now = model_shape(old), model_shape(config)
        diff = {k: (before[k], now[k]) for k in before if before[k] != now[k]}
        if diff:
            raise ValueError(
                f"{path} was trained with a different model shape {diff} (old, new); "
                "use a new --workdir or the same model flags"
            )
    output_lock.write_text_atomic(path, config.to_json() + "\n")


def check_resume(workdir: Path, dataset_dir, meta, vocabulary) -> str | None:
    """Before the Learner restores WORKDIR: refuse a dataset of another spec, skip a corrupt
    newest checkpoint (qtransformer/training/checkpoints.py). Returns a note for the user, or None.

    WORKDIR/dataset_spec.json records what fixes the network's input and output variables
    (state size, action size, image shape, instruction words) and which dataset gave them.
    """
    from qtransformer.training.checkpoints import fall_back_to_readable

    spec = {
        "state_dim": int(meta.state_dim),
        "action_dim": len(meta.action_low),
        "image_shape": list(meta.image_shape) if meta.image_shape else None,
        "vocabulary": list(vocabulary),
    }
    path = Path(workdir) / "dataset_spec.json"
    ckpt_dir = Path(workdir) / "train" / "checkpoints"
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"cannot read {path}: {e}; use a new --workdir") from e
        diff = [k for k in spec if old.get(k) != spec[k]]
        if diff and ckpt_dir.is_dir() and any(ckpt_dir.glob("ckpt-*.index")):
            shown = ", ".join(f"{k} {_short(old.get(k))} -> {_short(spec[k])}" for k in diff)
            raise ValueError(
                f"{workdir} was trained on dataset {old.get('dataset')} with another spec than "
                f"{dataset_dir} ({shown}); its checkpoints cannot hold this dataset: use a new "
                "--workdir, or the dataset it was trained on"
            )
    note = fall_back_to_readable(ckpt_dir)
    output_lock.write_text_atomic(
        path, json.dumps({"dataset": str(dataset_dir), **spec}, indent=2) + "\n"
    )
    return note


def _short(value) -> str:
    if isinstance(value, list) and len(value) > 6:
        return f"{len(value)} words"
    return str(value)
