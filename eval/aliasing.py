"""Aliased states in a dataset: near-twin states whose recorded actions fall in other bins.

    python -m qtransformer.eval.aliasing --dataset data/pick_place [--radius 0.002]

A learner that sees only the state cannot tell two states apart that are closer than the
noise of its own fit. If the demonstrator acts differently in them (a different action bin in
some dimension), no state-based policy can imitate both, and the greedy policy picks the
majority label: when that label is "stay", the state becomes a fixed point of the policy (the
stall after the grasp that the v1 expert produced, docs/stall.md).

For every transition t it finds the nearest other transition u (max-norm distance over the
state, metres for positions; the instruction must match) and counts t as *aliased* when
||s_u - s_t||_inf <= radius and bins(a_u) != bins(a_t). The report gives the aliased share
overall and per phase of the scripted expert (`sim_envs.expert.phase_of`, for 16-d privileged
states of our tasks; other data gets one row, "all").
"""

from __future__ import annotations

import argparse
import collections

import numpy as np


def aliased(states: np.ndarray, bins: np.ndarray, groups: np.ndarray, radius: float) -> np.ndarray:
    """bool [N]: transition t has another, within `radius` (max-norm) and in its group, whose
    action bins differ from t's. O(N^2 / groups) memory per group chunk; fine up to ~1e5 steps."""
    out = np.zeros(len(states), bool)
    for group in np.unique(groups):
        idx = np.flatnonzero(groups == group)
        s, b = states[idx], bins[idx]
        for start in range(0, len(idx), 512):
            chunk = slice(start, start + 512)
            dist = np.abs(s[chunk, None, :] - s[None, :, :]).max(-1)  # [c, n]
            differ = (b[chunk, None, :] != b[None, :, :]).any(-1)
            out[idx[chunk]] = ((dist <= radius) & differ).any(-1)
    return out


def phases(states: np.ndarray) -> np.ndarray:
    """The scripted expert's phase of each 16-d privileged state; "all" for other states."""
    from qtransformer.sim_envs import common, expert

    if states.shape[-1] != common.STATE_SIZE:
        return np.full(len(states), "all")
    return np.array([expert.phase_of(s.astype(np.float64)) for s in states])


def aliasing_report(dataset, radius: float = 0.002, action_bins: int = 17) -> dict:
    """{"radius", "transitions", "aliased", "share", "hold_still_share", "per_phase": {phase:
    {n, aliased, share}}}; hold_still_share: transitions whose action tokenises to no motion with
    the last (gripper) dimension at its low bound (open)."""
    from qtransformer.datasets.rlds_io import read_meta
    from qtransformer.eval.diagnose import load_steps
    from qtransformer.model.tokenizer import ActionTokenizer

    meta = read_meta(dataset)
    tokenizer = ActionTokenizer(meta.action_low, meta.action_high, action_bins)
    steps = load_steps(dataset, 0, meta.num_episodes, 0.98, tokenizer)
    flags = aliased(steps["state"], steps["bins"], steps["instruction"], radius)
    labels = phases(steps["state"])
    per_phase = collections.OrderedDict()
    for phase in dict.fromkeys(labels):
        mask = labels == phase
        n, k = int(mask.sum()), int(flags[mask].sum())
        per_phase[str(phase)] = {"n": n, "aliased": k, "share": round(k / n, 4)}
    total = int(flags.sum())
    # "hold still, open": no motion in any of the first D-1 dimensions, the last one at its low
    still = tokenizer.tokenize(np.r_[np.zeros(tokenizer.action_dims - 1), meta.action_low[-1]])
    hold_still = (steps["bins"] == still.numpy()).all(-1)
    return {
        "dataset": str(dataset),
        "radius": radius,
        "action_bins": action_bins,
        "expert_version": meta.protocol.get("expert_version", 1),
        "transitions": len(flags),
        "aliased": total,
        "share": round(total / len(flags), 4),
        "hold_still_share": round(float(hold_still.mean()), 4),
        "per_phase": per_phase,
    }


def format_report(report: dict) -> str:
    lines = [
        f"{report['dataset']}: {report['aliased']}/{report['transitions']} transitions aliased "
        f"({report['share']:.1%}) at radius {report['radius']}, {report['action_bins']} bins, "
        f"expert v{report['expert_version']}; {report['hold_still_share']:.1%} of them are "
        "'hold still, open'",
        f"  {'phase':<9} {'steps':>6} {'aliased':>8} {'share':>7}",
    ]
    for phase, row in report["per_phase"].items():
        lines.append(f"  {phase:<9} {row['n']:>6} {row['aliased']:>8} {row['share']:>7.1%}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from qtransformer.commands import quiet

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, help="RLDS dataset directory")
    parser.add_argument("--radius", type=float, default=0.002, help="max-norm twin distance")
    parser.add_argument("--action-bins", type=int, default=17, help="bins per action dimension")
    parser.add_argument("--out", metavar="FILE.json", help="also write the report here")
    args = parser.parse_args(argv)
    quiet.silence_libraries()
    report = aliasing_report(args.dataset, args.radius, args.action_bins)
    print(format_report(report))
    if args.out:
        from qtransformer.eval.metrics import write_report

        write_report(report, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
