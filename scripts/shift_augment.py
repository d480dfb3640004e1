"""Copy a privileged-state dataset with K extra copies of each episode, the scene translated
in the table plane: a probe of whether BC's aim fails for want of translation invariance.

    python scripts/shift_augment.py runs/bc_ceiling/data_pick_place_40 runs/aug/data_k10_r05 \\
        --copies 10 --radius 0.05

Each copy adds one uniform (dx, dy) in [-radius, radius]^2 to the absolute positions in the
16-d state (grip [0:2], object [4:6], target [7:9]); heights, the finger opening, the relative
vectors [10:16] and the actions stay as recorded, so every copy is labelled exactly as its
original (the expert reads only relative positions, except at the workspace walls).
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np

ABSOLUTE_XY = (0, 4, 7)  # first index of each absolute (x, y) pair in the privileged state


def main(argv=None) -> int:
    from qtransformer.commands import quiet

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset")
    parser.add_argument("out")
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--radius", type=float, default=0.05, help="metres")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    quiet.silence_libraries()
    from qtransformer.datasets import read_episodes, read_meta, write_dataset

    meta = read_meta(args.dataset)
    if meta.obs_mode != "privileged":
        raise SystemExit(f"{args.dataset}: obs mode {meta.obs_mode!r}; this needs 'privileged'")
    rng = np.random.default_rng(args.seed)
    episodes = []
    for episode in read_episodes(args.dataset):
        episodes.append(episode)
        for _ in range(args.copies):
            states = np.array(episode.states, np.float32)
            shift = rng.uniform(-args.radius, args.radius, size=2).astype(np.float32)
            for i in ABSOLUTE_XY:
                states[:, i : i + 2] += shift
            episodes.append(dataclasses.replace(episode, states=states))
    write_dataset(
        args.out, episodes, action_low=meta.action_low, action_high=meta.action_high,
        obs_mode=meta.obs_mode, protocol={**meta.protocol, "shift_copies": args.copies,
                                          "shift_radius": args.radius},
    )  # fmt: skip
    print(f"{len(episodes)} episodes -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
