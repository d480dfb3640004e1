"""Evaluation metrics and reports: success rate with its Wilson interval, atomic JSON.

A report is a flat dict (the contract in DESIGN.md, section 5):

    {"success_rate": 0.8, "success_ci95": [0.49, 0.94], "mean_return": 0.8,
     "mean_episode_length": 41.3, "episodes": 10, "policy": "runs/x/policy",
     "seed": 0, "task": "pick_place", "per_task": {...}}   # per_task: several tasks only

This module imports no TensorFlow, so the CLI and plotting code can use it cheaply.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

from qtransformer.commands import output_lock


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion.

    With p = k/n:

        centre = (p + z^2 / (2n)) / (1 + z^2/n)
        half   = z / (1 + z^2/n) * sqrt(p (1-p) / n + z^2 / (4 n^2))
        interval = [centre - half, centre + half], clipped to [0, 1]

    Unlike the normal (Wald) interval it stays inside [0, 1] and is not empty at
    k = 0 or k = n, which matters for the small episode counts of robot evaluation.
    n = 0 gives the uninformative (0, 1).
    """
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


# Two-sided 97.5% quantiles of Student's t with df = 1..30 (scipy.stats.t.ppf(0.975, df)).
_T975 = (
    12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
    2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
    2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423,
)  # fmt: skip


def t_interval(values: Sequence[float]) -> tuple[float, float]:
    """95% Student-t interval of the mean of `values` (e.g. one success rate per seed).

    mean +- t_{0.975, n-1} * s / sqrt(n), s the sample standard deviation (n - 1 in the
    denominator); df > 30 uses the normal 1.96. One value gives (mean, mean): no spread known.
    """
    n = len(values)
    if n == 0:
        raise ValueError("t_interval needs at least one value")
    mean = sum(values) / n
    if n == 1:
        return mean, mean
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    t = _T975[n - 2] if n - 1 <= len(_T975) else 1.96
    half = t * sd / math.sqrt(n)
    return mean - half, mean + half


def summarize(successes: Sequence[bool], returns: Sequence[float], lengths: Sequence[int]) -> dict:
    """Aggregate per-episode outcomes into the numeric report fields."""
    n = len(successes)
    if not (n == len(returns) == len(lengths)):
        raise ValueError("successes, returns and lengths must have the same length")
    k = int(sum(bool(s) for s in successes))
    low, high = wilson_interval(k, n)
    return {
        "success_rate": k / n if n else 0.0,
        "success_ci95": [low, high],
        "mean_return": float(sum(returns) / n) if n else 0.0,
        "mean_episode_length": float(sum(lengths) / n) if n else 0.0,
        "episodes": n,
        "successes": k,
    }


def write_report(report: dict, path: str | Path) -> Path:
    """Write `report` as JSON atomically: a temp file in the same folder, then rename.

    A crash leaves either the previous file or the new one, never half a file.
    """
    text = json.dumps(report, indent=2, sort_keys=True) + "\n"
    return output_lock.write_text_atomic(path, text)  # a failed write: WriteFailed naming path


def read_report(path: str | Path) -> dict:
    """Load a report JSON, with an error naming the file if it is not one."""
    path = Path(path)
    try:
        report = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"report {path} does not exist") from None
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"cannot read report {path}: {e}") from e
    if not isinstance(report, dict) or "success_rate" not in report:
        raise ValueError(f"{path} is not an evaluation report (no 'success_rate')")
    return report


def format_table(rows: dict[str, dict]) -> str:
    """One-screen table: one line per named report (run or task).

    >>> print(format_table({"expert": summarize([True, False], [1.0, 0.0], [30, 80])}))
    ... # doctest: +NORMALIZE_WHITESPACE
    name      episodes  success  95% CI          return  length
    expert           2    50.0%  [ 9.5%, 90.5%]   0.500    55.0
    """
    width = max([len("name")] + [len(name) for name in rows])
    lines = [
        f"{'name':<{width}}  episodes  success  95% CI          return  length",
    ]
    for name, r in rows.items():
        low, high = r["success_ci95"]
        lines.append(
            f"{name:<{width}}  {r['episodes']:>8}  {100 * r['success_rate']:>6.1f}%  "
            f"[{100 * low:>4.1f}%, {100 * high:>4.1f}%]  {r['mean_return']:>6.3f}  "
            f"{r['mean_episode_length']:>6.1f}"
        )
    return "\n".join(lines)


def table_rows(report: dict, name: str) -> dict[str, dict]:
    """Rows for `format_table`: the report itself, then its tasks if there are several."""
    rows = {name: report}
    for task, sub in report.get("per_task", {}).items():
        rows[f"  {task}"] = sub
    return rows
