"""Learning curves and comparison bar charts as PNG from TensorBoard logs and reports.

    qtransformer plot --logdir runs/hl_gauss runs/mse --reports a.json b.json --out plots/

writes `learning_curves.png` (one panel per scalar tag, e.g. loss, mean Q, eval
success, against training step; one line per run and log subfolder) and
`success_rates.png` (success rate per report, Wilson 95% intervals as error bars).
"""

from __future__ import annotations

import argparse
import re
from collections import defaultdict
from pathlib import Path

from qtransformer.commands import flags

# Panels shown first (and kept when there are too many tags), in this order.
KEY_TAGS = ("loss", "q", "success", "return")
MAX_PANELS = 12


def read_scalars(logdir: str | Path) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """{series: {tag: [(step, value), ...] sorted by step}} from every event file under logdir.

    A series is the run folder's name plus the event file's subfolder (e.g. "run/train").
    TF2 `tf.summary.scalar` stores values as rank-0 tensors; TF1 as `simple_value`:
    both are read.
    """
    import tensorflow as tf

    logdir = Path(logdir)
    files = sorted(logdir.rglob("events.out.tfevents.*"))
    if not files:
        raise FileNotFoundError(f"no TensorBoard event files under {logdir}")
    out: dict[str, dict[str, dict[int, float]]] = defaultdict(lambda: defaultdict(dict))
    for path in files:
        sub = path.parent.relative_to(logdir).as_posix()
        series = logdir.resolve().name + ("" if sub == "." else f"/{sub}")
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.HasField("simple_value"):
                    number = float(value.simple_value)
                elif value.HasField("tensor") and not value.tensor.tensor_shape.dim:
                    array = tf.make_ndarray(value.tensor)
                    if array.dtype.kind not in "fiub":
                        continue  # text summaries etc.
                    number = float(array)
                else:
                    continue  # images, histograms
                out[series][value.tag][int(event.step)] = number  # later writes win (resume)
    return {s: {t: sorted(points.items()) for t, points in tags.items()} for s, tags in out.items()}


def _rank(tag: str) -> tuple[int, str]:
    words = re.split(r"[^a-z]+", tag.lower())
    for i, key in enumerate(KEY_TAGS):
        if key in words or key in tag.lower().split("/")[-1]:
            return i, tag
    return len(KEY_TAGS), tag


def plot_curves(logdirs: list[str | Path], out_path: str | Path) -> Path:
    """One panel per scalar tag across all runs; returns the PNG path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for logdir in logdirs:
        runs.update(read_scalars(logdir))
    tags = sorted({t for tags in runs.values() for t in tags}, key=_rank)[:MAX_PANELS]
    if not tags:
        raise ValueError(f"no scalar summaries in {', '.join(map(str, logdirs))}")
    cols = min(3, len(tags))
    rows = (len(tags) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.5 * rows), squeeze=False)
    for ax, tag in zip(axes.flat, tags, strict=False):
        for series, series_tags in runs.items():
            if tag in series_tags:
                steps, values = zip(*series_tags[tag], strict=True)
                ax.plot(steps, values, label=series, marker="." if len(steps) < 30 else None)
        ax.set_title(tag)
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(tags) :]:
        ax.axis("off")
    fig.tight_layout()
    return _save(fig, out_path)


def report_labels(paths: list[str | Path]) -> list[str]:
    """Short unique labels: file stems, or parent/stem where stems collide."""
    paths = [Path(p) for p in paths]
    stems = [p.stem for p in paths]
    return [f"{p.parent.name}/{p.stem}" if stems.count(p.stem) > 1 else p.stem for p in paths]


def plot_success_bars(reports: dict[str, dict], out_path: str | Path) -> Path:
    """Bar per report: success rate with its Wilson 95% interval as an asymmetric error bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(reports)
    rates = [reports[n]["success_rate"] for n in names]
    low = [r - reports[n]["success_ci95"][0] for n, r in zip(names, rates, strict=True)]
    high = [reports[n]["success_ci95"][1] - r for n, r in zip(names, rates, strict=True)]
    fig, ax = plt.subplots(figsize=(max(4, 1.3 * len(names) + 2), 3.8))
    ax.bar(names, rates, yerr=[low, high], capsize=6, color="tab:blue", alpha=0.8)
    for i, name in enumerate(names):
        ax.text(i, 0.02, f"n={reports[name]['episodes']}", ha="center", fontsize=8, color="w")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("success rate (95% Wilson CI)")
    ax.grid(axis="y", alpha=0.3)
    plt.setp(ax.get_xticklabels(), rotation=20, ha="right")
    fig.tight_layout()
    return _save(fig, out_path)


def _save(fig, out_path: str | Path) -> Path:
    """Atomic PNG write: render to a temp name, then rename."""
    import matplotlib.pyplot as plt

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(out_path)
    return out_path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--logdir", nargs="+", default=[], metavar="DIR", help="TensorBoard dirs")
    parser.add_argument(
        "--reports", nargs="+", default=[], metavar="FILE.json", help="eval reports"
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for the PNG files")


def run(args: argparse.Namespace) -> int:
    from qtransformer.eval import metrics

    if not args.logdir and not args.reports:
        raise ValueError("give --logdir and/or --reports")
    flags.check_disjoint({"--out": args.out}, {"--logdir": args.logdir, "--reports": args.reports})
    out = Path(args.out)
    if args.logdir:
        print(f"curves: {plot_curves(args.logdir, out / 'learning_curves.png')}")
    if args.reports:
        reports = {
            label: metrics.read_report(path)
            for label, path in zip(report_labels(args.reports), args.reports, strict=True)
        }
        print(f"bars:   {plot_success_bars(reports, out / 'success_rates.png')}")
        print(metrics.format_table(reports))
    return 0
