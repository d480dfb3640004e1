"""The experiment's aggregation (by hand) and a tiny end-to-end run."""

import json

import pytest

from qtransformer import cli
from qtransformer.eval.experiment import summarize_method
from qtransformer.eval.metrics import t_interval, wilson_interval


def curve(seed, points):
    return {
        "loss": "hl_gauss",
        "seed": seed,
        "train_s": 1.0,
        "points": [
            {"step": s, "successes": k, "episodes": 10, "success_rate": k / 10} for s, k in points
        ],
    }


def test_summarize_pools_seeds_per_step():
    # Seed 0: 2/10 at step 100, 6/10 at step 200, 4/10 at step 300.
    # Seed 1: 4/10, 8/10, 6/10. Pooled: 6/20 = 0.3, 14/20 = 0.7 (peak), 10/20 = 0.5 (final).
    summary = summarize_method(
        [curve(0, [(100, 2), (200, 6), (300, 4)]), curve(1, [(100, 4), (200, 8), (300, 6)])], 10
    )
    assert summary["peak_success"] == pytest.approx(0.7)
    assert summary["peak_step"] == 200
    assert summary["final_success"] == pytest.approx(0.5)
    assert summary["final_ci95"] == pytest.approx(list(wilson_interval(10, 20)))
    assert summary["seeds"] == 2 and summary["episodes_per_eval"] == 10
    assert summary["per_seed_final"] == [0.4, 0.6]
    # Seed level: mean 0.5, s = 0.1414, t_{0.975,1} = 12.706 -> 0.5 +- 12.706 * 0.1 = +-1.27.
    assert summary["seed_mean"] == pytest.approx(0.5)
    assert summary["seed_ci95"] == pytest.approx([0.5 - 1.27062, 0.5 + 1.27062], abs=1e-4)


def test_t_interval_by_hand():
    # 0.1..0.5: mean 0.3, s = sqrt(0.1 / 4) = 0.158114, se = 0.0707107, t_{0.975,4} = 2.7764.
    low, high = t_interval([0.1, 0.2, 0.3, 0.4, 0.5])
    assert (low, high) == pytest.approx((0.3 - 0.196324, 0.3 + 0.196324), abs=1e-5)
    assert t_interval([0.7]) == (0.7, 0.7)


def test_experiment_quick_writes_results_and_plot(tmp_path):
    results = tmp_path / "results.json"
    # One method keeps it short: 2 tuning runs (--quick searches 2 entries) + 2 test seeds.
    args = ["experiment", "--quick", "--methods", "bc_filtered", "--seeds", "2"]
    code = cli.main([*args, "--out", str(tmp_path / "exp"), "--results", str(results)])
    assert code == 0
    data = json.loads(results.read_text())
    assert set(data["methods"]) == {"bc_filtered"}
    for name, m in data["methods"].items():
        assert 0.0 <= m["final_success"] <= 1.0
        low, high = m["final_ci95"]
        assert 0.0 <= low <= m["final_success"] <= high <= 1.0
        assert m["seeds"] == 2 and m["episodes_per_eval"] == 4
        assert len(m["per_seed_final"]) == 2
        assert len(m["curve"]) == 2  # --quick: two evaluation points
        # --quick searches the first two grid entries; the choice is one of them.
        assert m["chosen"] in data["tuning"][name]["grid"]
        assert len(data["tuning"][name]["validation_success"]) == 2
    assert data["dataset_mix"]["num_episodes"] == 12
    protocol = data["protocol"]
    assert protocol["replay"] == "open_loop" and protocol["noise"] == 0.3
    # 1/12 of 12 episodes: one clean demo, the rest open-loop replays of it.
    assert data["dataset_mix"]["by_source"]["expert"]["episodes"] == 1
    assert data["dataset_mix"]["by_source"]["replay"]["episodes"] == 11
    assert data["validation_seeds"] != data["test_seeds"]
    assert (tmp_path / "results.png").stat().st_size > 0
    # A second call reuses every cached run (no training) and gives the same numbers.
    assert cli.main([*args, "--out", str(tmp_path / "exp"), "--results", str(results)]) == 0
    assert json.loads(results.read_text())["methods"] == data["methods"]


def test_experiment_rejects_unknown_method(tmp_path):
    code = cli.main(["experiment", "--methods", "hl_gauss,ppo", "--out", str(tmp_path)])
    assert code == 2
    assert not any(tmp_path.iterdir())
