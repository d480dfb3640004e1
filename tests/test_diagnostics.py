"""Diagnostics: the pure functions against hand-computed values, and `qtransformer diagnose`."""

import json
import math

import numpy as np
import pytest
from scipy import stats
from test_train import TINY, toy_dataset

from qtransformer.tools import diagnostics as dg


def test_rankdata_averages_ties():
    np.testing.assert_array_equal(dg.rankdata([10, 20, 20, 5]), [2, 3.5, 3.5, 1])
    np.testing.assert_array_equal(dg.rankdata([3, 3, 3]), [2, 2, 2])


def test_spearman_hand_example_with_ties():
    # ranks x = [1, 2.5, 2.5, 4], y = [1, 3, 2, 4]; centred: [-1.5, 0, 0, 1.5], [-1.5, .5, -.5,
    # 1.5]; sum rx ry = 4.5, sum rx^2 = 4.5, sum ry^2 = 5 -> rho = 4.5 / sqrt(22.5) = 3/sqrt(10)
    assert dg.spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(3 / math.sqrt(10))
    assert dg.spearman([1, 2, 3], [30, 20, 10]) == pytest.approx(-1.0)
    assert dg.spearman([1, 1, 1], [1, 2, 3]) is None  # constant: undefined
    assert dg.spearman([1], [2]) is None


def test_spearman_matches_scipy_on_tied_data():
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 5, 200), rng.integers(0, 3, 200) + rng.integers(0, 5, 200) // 2
    assert dg.spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)


def test_error_stats_and_calibration_bins():
    q, g = np.array([0.1, 0.3, 0.5, 0.9]), np.array([0.0, 0.05, 0.6, 1.0])
    errs = dg.error_stats(q, g)
    assert errs["bias"] == pytest.approx((0.1 + 0.25 - 0.1 - 0.1) / 4)
    assert errs["mae"] == pytest.approx((0.1 + 0.25 + 0.1 + 0.1) / 4)
    assert errs["spearman"] == pytest.approx(1.0)
    cal = dg.calibration(q, g, 0.0, 1.0, bins=2)
    # G < 0.5: steps 0, 1 (mean Q 0.2, mean G 0.025); G >= 0.5 (1.0 in the closed last bin):
    # steps 2, 3 (mean Q 0.7, mean G 0.8). ECE = 0.5 * 0.175 + 0.5 * 0.1.
    assert [b["count"] for b in cal["bins"]] == [2, 2]
    assert [b["low"] for b in cal["bins"]] == [0.0, 0.5]
    assert cal["bins"][0]["mean_q"] == pytest.approx(0.2)
    assert cal["bins"][0]["mean_return"] == pytest.approx(0.025)
    assert cal["bins"][1]["mean_q"] == pytest.approx(0.7)
    assert cal["bins"][1]["mean_return"] == pytest.approx(0.8)
    assert cal["ece"] == pytest.approx(0.1375)
    tenths = dg.calibration(q, g, 0.0, 1.0, bins=10)["bins"]  # empty bins left out
    assert [(round(b["low"], 9), b["count"]) for b in tenths] == [(0.0, 2), (0.6, 1), (0.9, 1)]


def test_entropy_of_known_distributions():
    assert dg.entropy(np.zeros(4)) == pytest.approx(math.log(4))
    half_quarter = np.log([0.5, 0.25, 0.25]) + 7.0  # a shift changes nothing
    assert dg.entropy(half_quarter) == pytest.approx(1.5 * math.log(2))
    assert dg.entropy(np.array([[1e4, 0.0, 0.0]]))[0] == pytest.approx(0.0, abs=1e-9)


def test_unseen_bin_rate_on_a_constructed_case():
    # 1-d states: 0.4 is nearest to 0 and 1, 10.6 to 10 and 11 (k = 2).
    reference = np.array([[0.0], [1.0], [10.0], [11.0]])
    ref_bins = np.array([[0, 3], [1, 2], [5, 6], [6, 7]])
    neighbours = dg.nearest_neighbours(np.array([[0.4], [10.6]]), reference, k=2)
    assert [sorted(row) for row in neighbours.tolist()] == [[0, 1], [2, 3]]
    greedy = np.array([[1, 3], [4, 6]])  # state 2, dim 0: bin 4 is not in {5, 6}
    rate = dg.unseen_bin_rate(greedy, ref_bins[neighbours])
    assert rate == {"per_dimension": [0.5, 0.0], "any_dimension": 0.5}


def test_nearest_neighbours_use_standardised_states():
    rng = np.random.default_rng(1)
    reference, queries = rng.normal(size=(300, 3)), rng.normal(size=(40, 3))
    scaled = np.array([1.0, 1000.0, 0.1])  # features in other units: same neighbours
    got = dg.nearest_neighbours(queries * scaled, reference * scaled, k=5, chunk=7)
    z = (reference - reference.mean(0)) / reference.std(0)
    zq = (queries - reference.mean(0)) / reference.std(0)
    brute = np.argsort(((zq[:, None] - z[None]) ** 2).sum(-1), axis=1)[:, :5]
    np.testing.assert_array_equal(got, brute)
    assert dg.nearest_neighbours(queries, reference[:3], k=10).shape == (40, 3)


def test_agreement_exact_and_within_one_bin():
    greedy, data = np.array([[1, 2], [3, 4]]), np.array([[1, 3], [5, 4]])
    assert dg.agreement(greedy, data) == [0.5, 0.5]
    assert dg.agreement(greedy, data, 1) == [0.5, 1.0]
    assert dg.agreement(greedy[:0], data[:0]) == [None, None]


def test_build_report_groups_by_outcome():
    steps = {
        "mc_return": np.array([0.9, 1.0, 0.0, 0.0]),
        "success": np.array([True, True, False, False]),
        "first": np.array([True, False, True, False]),
        "data_bins": np.array([[1], [2], [3], [4]]),
        "greedy_bins": np.array([[1], [3], [3], [0]]),
        "neighbour_bins": np.array([[[1]], [[2]], [[3]], [[4]]]),
        "q_data": np.array([[0.2, 0.8], [0.4, 0.9], [0.1, 0.3], [0.3, 0.5]]),
        "q_greedy": np.array([[0.5, 0.6], [0.5, 1.0], [0.5, 0.2], [0.5, 0.4]]),
    }
    report = dg.build_report(steps, (0.0, 1.0))
    assert report["episodes"] == {"all": 2, "success": 1, "failed": 1}
    assert report["agreement"]["success"]["exact"] == [0.5]
    assert report["agreement"]["failed"]["within_1"] == [0.5]
    assert report["unseen_greedy_bin"]["per_dimension"] == [0.5]
    by = report["q"]["by_outcome"]
    assert by["success"]["q_data_first_step"] == pytest.approx(0.8)
    assert by["success"]["q_data_all_steps"] == pytest.approx(0.85)
    assert by["failed"]["q_greedy_all_steps"] == pytest.approx(0.3)
    assert report["q"]["last_dimension"]["bias"] == pytest.approx((-0.1 - 0.1 + 0.3 + 0.5) / 4)
    assert "entropy" not in report
    flat = dg.flatten_scalars(report)
    assert flat["diagnostics/q/per_dimension/dim1/mae"] == pytest.approx(0.25)
    assert flat["diagnostics/agreement/all/exact/dim0"] == 0.5
    assert all(isinstance(v, float) for v in flat.values())


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return toy_dataset(tmp_path_factory.mktemp("data") / "toy", episodes=10)


def _trained(toy, work, loss):
    from qtransformer.training.train import train

    train(toy, work, TINY.replace(steps=10, loss=loss), progress=False)
    return work


def test_diagnose_cli_on_a_tiny_run(toy, tmp_path, capsys):
    import tensorflow as tf

    from qtransformer.commands.cli import main

    work = _trained(toy, tmp_path / "run", "hl_gauss")
    out = tmp_path / "report.json"
    argv = ["diagnose", "--workdir", str(work), "--dataset", str(toy), "--episodes", "4"]
    assert main(argv + ["--k", "3", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Spearman" in printed and "unseen greedy bin (k=3)" in printed
    report = json.loads(out.read_text())
    assert report["checkpoint_step"] == 10 and report["loss"] == "hl_gauss"
    assert report["steps"] == 4 * 6 and report["episodes"] == {"all": 4, "success": 2, "failed": 2}
    assert report["diagnosed_episodes"] == [6, 10]
    q = report["q"]
    assert len(q["per_dimension"]) == 2 and -1 <= q["last_dimension"]["spearman"] <= 1
    assert (
        0 <= q["last_dimension"]["mae"] <= 2
        and sum(b["count"] for b in q["calibration"]["bins"]) == 24
    )
    for row in q["by_outcome"].values():
        assert all(-0.5 < v < 1.5 for v in row.values())
    ent = report["entropy"]
    assert ent["max"] == pytest.approx(math.log(11))
    assert all(0 < v <= ent["max"] + 1e-6 for v in ent["data_action"] + ent["greedy_action"])
    for group in report["agreement"].values():
        assert all(0 <= e <= w <= 1 for e, w in zip(group["exact"], group["within_1"], strict=True))
    unseen = report["unseen_greedy_bin"]
    assert unseen["k"] == 3 and 0 <= unseen["any_dimension"] <= 1
    events = list((work / "diagnostics").glob("events.out.tfevents*"))
    assert events
    tags = {
        v.tag for e in tf.compat.v1.train.summary_iterator(str(events[0])) for v in e.summary.value
    }
    assert "diagnostics/q/last_dimension/spearman" in tags
    assert "diagnostics/agreement/success/exact/dim0" in tags


@pytest.mark.parametrize("loss", ["hl_gauss", "bc"])
def test_network_outputs_of_an_untrained_agent(toy, loss):
    from qtransformer.datasets import read_meta
    from qtransformer.eval.diagnose import load_steps, network_outputs
    from qtransformer.model.agent import QTransformerAgent
    from qtransformer.model.network import word_vocabulary
    from qtransformer.model.tokenizer import ActionTokenizer
    from qtransformer.training.export import policy_specs

    config, meta = TINY.replace(loss=loss), read_meta(toy)
    agent = QTransformerAgent(*policy_specs(meta), config, word_vocabulary(meta.instructions))
    tokenizer = ActionTokenizer(meta.action_low, meta.action_high, config.data.action_bins)
    steps = load_steps(toy, 7, 10, config.data.gamma, tokenizer)
    assert steps["state"].shape == (18, 3) and steps["first"].sum() == 3
    np.testing.assert_array_equal(steps["success"], np.repeat([False, True, False], 6))
    # Sparse reward 1 at the last step of the successful episode 8: G_t = gamma^(5 - t).
    np.testing.assert_allclose(steps["mc_return"][6:12], 0.98 ** np.arange(5, -1, -1), 1e-6)
    out = network_outputs(agent, config, steps, batch_size=5)
    assert out["greedy_bins"].shape == (18, 2)
    if loss == "bc":  # no Q-values: agreement and unseen bins only
        assert set(out) == {"greedy_bins"}
        return
    # Position 0 sees no bins, so the greedy bin's Q there is the max over all bins >= data's.
    assert np.all(out["q_greedy"][:, 0] >= out["q_data"][:, 0] - 1e-6)
    v = config.model.value_bins
    assert np.all((out["entropy_data"] > 0) & (out["entropy_data"] <= math.log(v) + 1e-6))


def test_diagnose_errors_are_one_line(toy, tmp_path, capsys):
    from qtransformer.commands.cli import main

    (tmp_path / "empty").mkdir()
    assert main(["diagnose", "--workdir", str(tmp_path / "empty"), "--dataset", str(toy)]) == 2
    assert "config.json not found" in capsys.readouterr().err
    work = tmp_path / "untrained"
    work.mkdir()
    (work / "config.json").write_text(TINY.to_json())
    assert main(["diagnose", "--workdir", str(work), "--dataset", str(toy), "--episodes", "4"]) == 2
    err = capsys.readouterr().err
    assert "no checkpoint in" in err and len(err.strip().splitlines()) == 1
    assert main(["diagnose", "--workdir", str(work), "--dataset", str(toy), "--episodes", "0"]) == 2
    assert "none is left for the nearest training states" in capsys.readouterr().err


def test_train_writes_diagnostics_to_tensorboard_during_training(toy, tmp_path):
    """train --diagnose-dataset: diagnostics/... scalars at every --diagnose-every step, from
    the live agent; the last one equals `diagnose` on the final checkpoint."""
    import tensorflow as tf

    from qtransformer.commands.cli import main

    work = tmp_path / "run"
    argv = ["train", "--dataset", str(toy), "--workdir", str(work), "--steps", "6",
            "--embed-dim", "16", "--layers", "1", "--heads", "2", "--batch-size", "8",
            "--checkpoint-every", "6", "--diagnose-dataset", str(toy),
            "--diagnose-every", "3", "--diagnose-episodes", "4", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    events = sorted((work / "diagnostics").glob("events.out.tfevents*"))
    assert len(events) >= 1
    by_step: dict[int, dict[str, float]] = {}
    for path in events:
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                number = float(tf.make_ndarray(value.tensor))
                by_step.setdefault(event.step, {})[value.tag] = number
    assert sorted(by_step) == [3, 6]
    assert "diagnostics/q/last_dimension/spearman" in by_step[3]
    assert "diagnostics/entropy/data_action/dim1" in by_step[6]
    # The same numbers from the restored final checkpoint (a second, independent path).
    out = tmp_path / "report.json"
    cli = ["diagnose", "--workdir", str(work), "--dataset", str(toy), "--episodes", "4"]
    assert main(cli + ["--train-dataset", str(toy), "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert by_step[6]["diagnostics/q/last_dimension/mae"] == pytest.approx(
        report["q"]["last_dimension"]["mae"], rel=1e-4
    )
    assert main(argv[:7] + ["--diagnose-every", "3"]) == 2  # needs --diagnose-dataset
