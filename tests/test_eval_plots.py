"""Plots from synthetic TensorBoard event files (TF2 tensor scalars and TF1 simple_value)."""

import json

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from qtransformer.commands.cli import main
from qtransformer.eval import metrics, plots


def _write_run(logdir, scale):
    """TF2 summaries in logdir/train (tensors) and a TF1-style simple_value in logdir/eval."""
    writer = tf.summary.create_file_writer(str(logdir / "train"))
    with writer.as_default():
        for step in range(0, 100, 10):
            tf.summary.scalar("loss", scale / (1 + step), step=step)
            tf.summary.scalar("mean_q", 0.01 * step, step=step)
            tf.summary.text("note", "not a scalar", step=step)
    writer.close()
    with tf.Graph().as_default():  # the TF1 writer needs graph mode
        eval_writer = tf.compat.v1.summary.FileWriter(str(logdir / "eval"))
        for step in (50, 100):
            value = tf.compat.v1.Summary.Value(tag="eval/success_rate", simple_value=step / 200)
            eval_writer.add_summary(tf.compat.v1.Summary(value=[value]), step)
        eval_writer.close()


def test_read_scalars_reads_tensor_and_simple_values(tmp_path):
    _write_run(tmp_path / "run_a", 2.0)
    scalars = plots.read_scalars(tmp_path / "run_a")
    assert set(scalars) == {"run_a/train", "run_a/eval"}
    loss = scalars["run_a/train"]["loss"]
    assert [s for s, _ in loss] == list(range(0, 100, 10))
    np.testing.assert_allclose([v for _, v in loss], [2.0 / (1 + s) for s in range(0, 100, 10)])
    assert "note" not in scalars["run_a/train"]  # text summaries are skipped
    assert scalars["run_a/eval"]["eval/success_rate"] == [(50, 0.25), (100, 0.5)]


def test_plot_cli_writes_pngs(tmp_path, capsys):
    _write_run(tmp_path / "hl_gauss", 2.0)
    _write_run(tmp_path / "mse", 3.0)
    reports = []
    for name, k in (("hl_gauss", 8), ("mse", 3)):
        r = metrics.summarize(
            [i < k for i in range(10)], [float(i < k) for i in range(10)], [40] * 10
        )
        reports.append(str(metrics.write_report(r, tmp_path / name / "report.json")))
    out = tmp_path / "plots"
    code = main(["plot", "--logdir", str(tmp_path / "hl_gauss"), str(tmp_path / "mse"),
                 "--reports", *reports, "--out", str(out)])  # fmt: skip
    assert code == 0
    for name in ("learning_curves.png", "success_rates.png"):
        with Image.open(out / name) as image:
            assert image.format == "PNG" and image.size[0] > 300
    assert sorted(p.name for p in out.iterdir()) == ["learning_curves.png", "success_rates.png"]
    printed = capsys.readouterr().out
    assert "hl_gauss/report" in printed and "80.0%" in printed and "30.0%" in printed


def test_report_labels_disambiguate():
    assert plots.report_labels(["a/r.json", "b/r.json", "c/x.json"]) == ["a/r", "b/r", "x"]


def test_plot_errors_name_the_problem(tmp_path, capsys):
    assert main(["plot", "--logdir", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert str(tmp_path) in capsys.readouterr().err
    (tmp_path / "r.json").write_text(json.dumps({"x": 1}))
    with pytest.raises(ValueError, match="r.json"):
        metrics.read_report(tmp_path / "r.json")


def test_tuning_plot_title_counts_the_seeds_each_point_has():
    from qtransformer.eval.experiment import seeds_label

    assert seeds_label({3}) == "3 training seeds"
    assert seeds_label({1}) == "1 training seed"
    assert seeds_label({1, 3}) == "1-3 training seeds"  # a sweep that is still running
