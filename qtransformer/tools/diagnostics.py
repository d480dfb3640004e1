"""Why does an offline Q-learner underperform? Pure numpy diagnostics over held-out steps.

Shapes: N transitions (steps of held-out episodes), D action dimensions, A action bins,
V value bins, K neighbours. Inputs come from `qtransformer diagnose` (eval/diagnose.py),
which runs the restored network; everything here is numpy, no TensorFlow, no state.

- Calibration: Q of the data's actions q [N] against their Monte-Carlo returns G [N],
  bias = mean(q - G), mae = mean |q - G|, Spearman rank correlation, and the mean q
  vs mean G inside equal-width bins of G (`calibration`).
- Unseen greedy bins: for a held-out state s, its neighbourhood is the K nearest
  dataset states in state space standardised by the dataset's per-feature mean and
  std (std floored at 0.01, as the network does). Dimension i's greedy bin is "unseen"
  if no neighbour's data action took that bin in dimension i (`unseen_bin_rate`).
- Entropy (nats) of a value distribution softmax(logits) over V bins (`entropy`).
- Agreement of greedy and data bins, exact or within +-tolerance bins (`agreement`).
"""

from __future__ import annotations

import numpy as np

STD_FLOOR = 1e-2  # the network's floor on the state std (model/network.py)


def rankdata(x: np.ndarray) -> np.ndarray:
    """Ranks 1..N of a 1-d array, ties sharing their average rank.

    Example: rankdata([10, 20, 20, 5]) = [2, 3.5, 3.5, 1].
    """
    x = np.asarray(x, np.float64).reshape(-1)
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    # Start index of each run of equal values, and the run each sorted position is in.
    starts = np.flatnonzero(np.r_[True, sorted_x[1:] != sorted_x[:-1]])
    run = np.cumsum(np.r_[True, sorted_x[1:] != sorted_x[:-1]]) - 1
    ends = np.r_[starts[1:], len(x)]  # exclusive
    average = (starts + 1 + ends) / 2.0  # mean of the 1-based ranks starts+1 .. ends
    ranks = np.empty(len(x))
    ranks[order] = average[run]
    return ranks


def spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    """Spearman rank correlation: Pearson correlation of the average ranks (ties handled).

    None when fewer than 2 values or either side is constant (undefined).
    """
    x, y = np.asarray(x).reshape(-1), np.asarray(y).reshape(-1)
    if len(x) != len(y):
        raise ValueError(f"spearman: {len(x)} and {len(y)} values")
    if len(x) < 2:
        return None
    rx, ry = rankdata(x) - (len(x) + 1) / 2, rankdata(y) - (len(y) + 1) / 2
    denom = np.sqrt(np.sum(rx * rx) * np.sum(ry * ry))
    return None if denom == 0 else float(np.sum(rx * ry) / denom)


def error_stats(q: np.ndarray, g: np.ndarray) -> dict:
    """{bias: mean(q - g), mae: mean|q - g|, spearman, mean_q, mean_return} of q, g [N]."""
    q, g = np.asarray(q, np.float64), np.asarray(g, np.float64)
    if q.size == 0:
        return {"bias": None, "mae": None, "spearman": None, "mean_q": None, "mean_return": None}
    return {
        "bias": float(np.mean(q - g)),
        "mae": float(np.mean(np.abs(q - g))),
        "spearman": spearman(q, g),
        "mean_q": float(np.mean(q)),
        "mean_return": float(np.mean(g)),
    }


def calibration(q: np.ndarray, g: np.ndarray, low: float, high: float, bins: int = 10) -> dict:
    """Mean q vs mean G in `bins` equal-width bins of G on [low, high].

    Bin j holds low + j w <= G < low + (j+1) w (w = (high - low) / bins; the last bin is
    closed, G outside [low, high] is clipped into the outer bins). Empty bins are left out.
    Returns {"bins": [{low, high, count, mean_q, mean_return}], "ece"}, ece = sum over bins
    of count/N * |mean_q - mean_return| (the expected calibration error).
    """
    q, g = np.asarray(q, np.float64), np.asarray(g, np.float64)
    width = (high - low) / bins
    # 1e-9: a G on an edge (0.6 / 0.1 = 5.999...) goes to the bin that starts there.
    index = np.clip(np.floor((g - low) / width + 1e-9), 0, bins - 1).astype(int)
    rows, ece = [], 0.0
    for j in range(bins):
        member = index == j
        if not member.any():
            continue
        mq, mg = float(q[member].mean()), float(g[member].mean())
        rows.append({"low": low + j * width, "high": low + (j + 1) * width,
                     "count": int(member.sum()), "mean_q": mq, "mean_return": mg})  # fmt: skip
        ece += member.sum() / len(g) * abs(mq - mg)
    return {"bins": rows, "ece": float(ece) if len(g) else None}


def entropy(logits: np.ndarray) -> np.ndarray:
    """Entropy in nats of softmax(logits) over the last axis: -sum p log p. Shape [...]."""
    logits = np.asarray(logits, np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return -(np.exp(log_p) * log_p).sum(axis=-1)


def nearest_neighbours(queries: np.ndarray, reference: np.ndarray, k: int,
                       chunk: int = 256) -> np.ndarray:  # fmt: skip
    """int [N, k]: indices of the k nearest reference states of each query [N, S].

    Euclidean distance after standardising both with the reference's per-feature mean and
    std (floored at STD_FLOOR). k is capped at the number of reference states.
    """
    reference = np.asarray(reference, np.float64)
    queries = np.asarray(queries, np.float64)
    if len(reference) == 0:
        raise ValueError("no reference states for the nearest-neighbour search")
    mean, std = reference.mean(0), np.maximum(reference.std(0), STD_FLOOR)
    ref, qry = (reference - mean) / std, (queries - mean) / std
    k = min(k, len(ref))
    ref_sq = (ref * ref).sum(1)
    out = np.empty((len(qry), k), np.int64)
    for start in range(0, len(qry), chunk):
        block = qry[start : start + chunk]
        dist = ref_sq[None, :] - 2.0 * block @ ref.T  # + |q|^2, constant per row
        part = np.argpartition(dist, k - 1, axis=1)[:, :k]
        order = np.argsort(np.take_along_axis(dist, part, 1), axis=1, kind="stable")
        out[start : start + chunk] = np.take_along_axis(part, order, 1)
    return out


def unseen_bin_rate(greedy: np.ndarray, neighbour_bins: np.ndarray) -> dict:
    """How often the greedy bin is not among the bins the neighbours took.

    greedy int [N, D]; neighbour_bins int [N, K, D] (data bins of each state's K nearest
    dataset states). Returns {"per_dimension": [D] fractions, "any_dimension": fraction of
    states with at least one unseen greedy bin}.
    """
    greedy, neighbour_bins = np.asarray(greedy), np.asarray(neighbour_bins)
    unseen = ~(neighbour_bins == greedy[:, None, :]).any(axis=1)  # [N, D]
    if len(greedy) == 0:
        return {"per_dimension": [None] * greedy.shape[-1], "any_dimension": None}
    return {
        "per_dimension": [float(v) for v in unseen.mean(0)],
        "any_dimension": float(unseen.any(1).mean()),
    }


def agreement(greedy: np.ndarray, data: np.ndarray, tolerance: int = 0) -> list[float | None]:
    """Per dimension, the fraction of steps with |greedy bin - data bin| <= tolerance. [D]."""
    greedy, data = np.asarray(greedy), np.asarray(data)
    if len(greedy) == 0:
        return [None] * greedy.shape[-1]
    return [float(v) for v in (np.abs(greedy - data) <= tolerance).mean(0)]


def mean_or_none(values: np.ndarray) -> float | None:
    """Mean of `values` as a float, None if empty (JSON has no NaN)."""
    values = np.asarray(values, np.float64)
    return float(values.mean()) if values.size else None


def build_report(steps: dict, v_range: tuple[float, float], calibration_bins: int = 10) -> dict:
    """The diagnostics of a set of held-out steps (the JSON of `qtransformer diagnose`).

    steps: numpy arrays over N steps: `mc_return` [N], `success` bool [N] (its episode
    succeeded), `first` bool [N] (first step of its episode), `data_bins`, `greedy_bins`
    int [N, D], `neighbour_bins` int [N, K, D]; for Q-learners also `q_data` (Q of the data's
    bins at each dimension's position) and `q_greedy` [N, D]; for classification losses also
    `entropy_data`, `entropy_greedy` [N, D]. v_range: (v_min, v_max) for the return bins.

    Q-values at the last dimension score the whole action, so `q` compares them with G; the
    per-dimension rows use each position's Q of the data's prefix.
    """
    success, first = np.asarray(steps["success"], bool), np.asarray(steps["first"], bool)
    data, greedy = steps["data_bins"], steps["greedy_bins"]
    groups = {"all": np.ones_like(success), "success": success, "failed": ~success}
    report = {
        "steps": int(len(success)),
        "episodes": {k: int((first & m).sum()) for k, m in groups.items()},
        "agreement": {
            name: {
                "exact": agreement(greedy[m], data[m]),
                "within_1": agreement(greedy[m], data[m], 1),
                "all_dimensions_exact": mean_or_none((greedy[m] == data[m]).all(-1)),
            }
            for name, m in groups.items()
        },  # fmt: skip
        "unseen_greedy_bin": unseen_bin_rate(greedy, steps["neighbour_bins"]),
    }
    report["unseen_greedy_bin"]["k"] = int(steps["neighbour_bins"].shape[1])
    if steps.get("q_data") is not None:
        g, q_data, q_greedy = steps["mc_return"], steps["q_data"], steps["q_greedy"]
        report["q"] = {
            "last_dimension": error_stats(q_data[:, -1], g),
            "per_dimension": [error_stats(q_data[:, i], g) for i in range(q_data.shape[1])],
            "calibration": calibration(q_data[:, -1], g, *v_range, bins=calibration_bins),
            "by_outcome": {
                name: {
                    "q_data_first_step": mean_or_none(q_data[m & first, -1]),
                    "q_data_all_steps": mean_or_none(q_data[m, -1]),
                    "q_greedy_first_step": mean_or_none(q_greedy[m & first, -1]),
                    "q_greedy_all_steps": mean_or_none(q_greedy[m, -1]),
                    "return_all_steps": mean_or_none(g[m]),
                }
                for name, m in groups.items()
            },  # fmt: skip
        }
    if steps.get("entropy_data") is not None:
        report["entropy"] = {
            "data_action": [float(v) for v in steps["entropy_data"].mean(0)],
            "greedy_action": [float(v) for v in steps["entropy_greedy"].mean(0)],
        }
    return report


def flatten_scalars(report: dict, prefix: str = "diagnostics") -> dict[str, float]:
    """{"diagnostics/q/last_dimension/bias": 0.1, ".../exact/dim0": 0.5, ...}: every number.

    Lists of numbers become /dim<i> keys; lists of dicts (calibration bins) and None are
    left out. For TensorBoard scalars beside train/.
    """
    out = {}
    for key, value in report.items():
        name = f"{prefix}/{key}"
        if isinstance(value, dict):
            out.update(flatten_scalars(value, name))
        elif isinstance(value, list):
            if key == "per_dimension" and value and isinstance(value[0], dict):
                for i, row in enumerate(value):
                    out.update(flatten_scalars(row, f"{name}/dim{i}"))
            else:
                out.update({f"{name}/dim{i}": float(v) for i, v in enumerate(value)
                            if isinstance(v, (int, float))})  # fmt: skip
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[name] = float(value)
    return out
