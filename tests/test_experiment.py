"""The experiment's aggregation (by hand) and a tiny end-to-end run."""

import json

import pytest

from qtransformer import cli
from qtransformer.eval.experiment import summarize_method
from qtransformer.eval.metrics import wilson_interval


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


def test_experiment_quick_writes_results_and_plot(tmp_path):
    results = tmp_path / "results.json"
    args = ["experiment", "--quick", "--methods", "hl_gauss,bc", "--seeds", "1"]
    code = cli.main([*args, "--out", str(tmp_path / "exp"), "--results", str(results)])
    assert code == 0
    data = json.loads(results.read_text())
    assert set(data["methods"]) == {"hl_gauss", "bc"}
    for m in data["methods"].values():
        assert 0.0 <= m["final_success"] <= 1.0
        low, high = m["final_ci95"]
        assert 0.0 <= low <= m["final_success"] <= high <= 1.0
        assert m["seeds"] == 1 and m["episodes_per_eval"] == 4
        assert len(m["curve"]) == 2  # --quick: two evaluation points
    assert data["dataset_mix"]["num_episodes"] == 12
    assert (tmp_path / "results.png").stat().st_size > 0
    # A second call reuses every cached run (no training) and gives the same numbers.
    assert cli.main([*args, "--out", str(tmp_path / "exp"), "--results", str(results)]) == 0
    assert json.loads(results.read_text())["methods"] == data["methods"]


def test_experiment_rejects_unknown_method(tmp_path):
    code = cli.main(["experiment", "--methods", "hl_gauss,ppo", "--out", str(tmp_path)])
    assert code == 2
    assert not any(tmp_path.iterdir())
