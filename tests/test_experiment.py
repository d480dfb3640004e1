"""The experiment's aggregation (by hand) and a tiny end-to-end run."""

import json

import numpy as np
import pytest

from qtransformer.commands import cli
from qtransformer.eval import experiment
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


def test_experiment_quick_writes_results_and_plot(tmp_path, capsys):
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
    assert data["round"] == 2 and data["data_size"] == {"episodes": 12, "demos": 1}
    assert data["model_size"]["embed_dim"] == 64
    # Each cached run records the dataset's protocol; one made on another expert is refused.
    cached = sorted((tmp_path / "exp" / "curves").glob("test_*.json"))[0]
    run = json.loads(cached.read_text())
    assert run["protocol"] == {"expert_version": 3, "replay_tail": "truncate"}
    cached.write_text(json.dumps({**run, "protocol": {**run["protocol"], "expert_version": 2}}))
    code = cli.main([*args, "--out", str(tmp_path / "exp"), "--results", str(results)])
    assert code != 0
    assert f"cached run {cached}" in capsys.readouterr().err


def test_sweep_seeds_and_chosen_from(tmp_path):
    out, first, second = tmp_path / "exp", tmp_path / "a.json", tmp_path / "b.json"
    args = ["experiment", "--quick", "--methods", "bc", "--seeds", "1", "--out", str(out)]
    assert cli.main([*args, "--results", str(first), "--sweep-seeds", "2"]) == 0
    tuning = json.loads(first.read_text())["tuning"]["bc"]
    sweep = tuning["sweep"]
    assert sweep["seeds"] == [experiment.TUNE_SEED, experiment.TUNE_SEED + 1]
    # one row per grid entry; its first seed is the tuning run itself
    assert [row[0] for row in sweep["validation_success"]] == tuning["validation_success"]
    assert (tmp_path / "a_tuning.png").stat().st_size > 0
    # --chosen-from: no tuning, the earlier choice is tested (a cached run, so no training)
    assert cli.main([*args, "--results", str(second), "--chosen-from", str(first)]) == 0
    again = json.loads(second.read_text())
    assert again["tuning"]["bc"]["chosen"] == tuning["chosen"]
    assert "grid" not in again["tuning"]["bc"]
    assert cli.main([*args, "--results", str(second), "--chosen-from", str(out)]) == 2


def test_round_two_grid_brackets_each_default_with_the_same_budget():
    sizes = {len(grid) for grid in experiment.GRID.values()}
    assert sizes == {7}  # the same budget for every method
    for method in experiment.Q_LEARNERS:
        alphas = [params["alpha"] for params in experiment.GRID[method]]
        assert alphas[0] == 0.01 and alphas[-1] == 10.0 and 1.0 in alphas
        ratios = np.diff(np.log10(alphas))
        assert np.allclose(ratios, 0.5, atol=0.03)  # half-decades (0.03 for 10**-1.5)
    dropouts = [params["dropout"] for params in experiment.GRID["bc"]]
    assert min(dropouts) == 0.0 and 0.2 in dropouts and max(dropouts) >= 0.4


def test_experiment_rejects_unknown_method(tmp_path):
    code = cli.main(["experiment", "--methods", "hl_gauss,ppo", "--out", str(tmp_path)])
    assert code == 2
    assert not any(tmp_path.iterdir())
