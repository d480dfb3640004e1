"""Writing and reading RLDS datasets in TFDS format, and converters.

`load_dataset`, `write_dataset`, `DatasetMeta` etc. are imported lazily so that
`import qtransformer.datasets.collect` (the CLI) does not pull in TensorFlow.
"""

from __future__ import annotations

from qtransformer.datasets.episode import Episode

_LAZY = (
    "DatasetMeta",
    "DatasetWriter",
    "load_dataset",
    "read_episodes",
    "read_meta",
    "write_dataset",
)

__all__ = ["Episode", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        from qtransformer.datasets import rlds_io

        return getattr(rlds_io, name)
    raise AttributeError(f"module 'qtransformer.datasets' has no attribute {name!r}")
