"""scripts/scaling_report.py on a hand-made cache and TensorBoard logs, numbers worked by hand."""

import importlib.util
import json
import math
from pathlib import Path
from types import SimpleNamespace

import tensorflow as tf

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("scaling_report", ROOT / "scripts/scaling_report.py")
scaling_report = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(scaling_report)


def _run(cache: Path, runs: Path, method: str, seed: int, curve: list[float], td: list[float]):
    name = f"test_{method}_alpha1_seed{seed}"
    points = [  # a cached run's fields, 100 episodes per evaluation
        {"step": 1000 * (i + 1), "success_rate": s, "successes": round(100 * s), "episodes": 100}
        for i, s in enumerate(curve)
    ]
    run = {"method": method, "seed": seed, "points": points, "train_s": 1.0}
    cache.mkdir(parents=True, exist_ok=True)
    (cache / f"{name}.json").write_text(json.dumps(run))
    writer = tf.summary.create_file_writer(str(runs / name / "train"))
    with writer.as_default():
        for step, value in enumerate(td):
            tf.summary.scalar("train/td_error", value, step=step)
            tf.summary.scalar("train/td_loss", 2 * value, step=step)
    writer.close()


def test_rows_hold_seed_means_t_intervals_peaks_and_the_last_ten_td_points(tmp_path):
    main_cache, main_runs = tmp_path / "main_cache", tmp_path / "main_runs"
    cache, runs = tmp_path / "cache", tmp_path / "runs"
    # td: 12 points; the last 10 of seed 0 are 2..11 (mean 6.5), of seed 1 are 12..21 (16.5)
    _run(main_cache, main_runs, "hl_gauss", 0, [0.2, 0.6, 0.4], [float(v) for v in range(12)])
    _run(main_cache, main_runs, "hl_gauss", 1, [0.4, 0.4, 0.6], [float(v) for v in range(10, 22)])
    _run(main_cache, main_runs, "hl_gauss", 7, [1.0, 1.0, 1.0], [0.0])  # not a seed of the sweep
    _run(cache / "w128x2", runs / "w128x2" / "runs", "mse", 2, [0.1, 0.3], [5.0])
    args = SimpleNamespace(main_cache=main_cache, main_runs=main_runs, cache=cache, runs=runs)
    result = scaling_report.report(args)

    assert list(result["model"]) == ["64x2", "128x2"]  # 128x4 and 256x4 have no runs
    hl = result["model"]["64x2"]["hl_gauss"]
    assert hl["seeds"] == [0, 1] and hl["final_per_seed"] == [0.4, 0.6]
    half = 12.706 * math.sqrt(0.02) / math.sqrt(2)  # t(0.975, 1) * s / sqrt(n), s = 0.1414
    assert math.isclose(hl["final_mean"], 0.5)
    assert math.isclose(hl["final_t95"][0], 0.5 - half, rel_tol=1e-3)
    assert math.isclose(hl["final_t95"][1], 0.5 + half, rel_tol=1e-3)
    assert (hl["peak"], hl["peak_step"], hl["final_step"]) == (0.5, 2000, 3000)  # 0.3, 0.5, 0.5
    assert math.isclose(hl["td_error"], (6.5 + 16.5) / 2)
    assert math.isclose(hl["td_loss"], 23.0)
    assert "mse" not in result["model"]["64x2"]
    mse = result["model"]["128x2"]["mse"]
    assert mse["final_per_seed"] == [0.3] and mse["final_t95"] == [0.3, 0.3]
    assert result["data"] == {"40 demos": result["model"]["64x2"]}  # the main run on both axes


def test_scaling_claims_by_hand():
    def row(*curves):  # one success curve per seed
        return {"curve_per_seed": [list(c) for c in curves]}

    result = {"model": {
        "64x2": {"hl_gauss": row([0.6], [0.6]), "mse": row([0.5], [0.7])},
        "128x2": {"hl_gauss": row([0.9], [0.9])},  # MSE missing: not an end point
        "128x4": {"hl_gauss": row([0.9, 0.4], [0.7, 0.4]), "mse": row([0.8], [0.8])},
        "256x4": {"hl_gauss": row([0.0]), "mse": row([0.9])},  # 1 of 2 seeds: not yet the end
    }, "data": {"40 demos": {"hl_gauss": row([0.6]), "mse": row([0.6])}}}  # fmt: skip
    claims = scaling_report.scaling_claims(result)
    assert "data" not in claims  # one size with both methods: no change to measure
    c = claims["model"]
    assert (c["from"], c["to"]) == ("64x2", "128x4")
    final, peak = c["final"], c["peak"]
    # HL-Gauss final: 0.4 - 0.6 = -0.2 with no seed spread, so a zero-width interval.
    assert [round(v, 9) for v in final["hl_gauss"]] == [-0.2, -0.2, -0.2]
    # MSE: 0.8 - 0.6 = +0.2; resampled 64x2 means are 0.5, 0.6 or 0.7, so changes in [0.1, 0.3].
    mse = final["mse"]
    assert math.isclose(mse[0], 0.2) and 0.1 - 1e-9 <= mse[1] <= mse[2] <= 0.3 + 1e-9
    assert math.isclose(final["hl_gauss_minus_mse"][0], -0.4)
    diff = final["hl_gauss_minus_mse"]
    assert -0.5 - 1e-9 <= diff[1] <= diff[2] <= -0.3 + 1e-9
    # HL-Gauss peak at 128x4: the seed-mean curve is (0.8, 0.4), so 0.8 - 0.6 = +0.2; resampled
    # seeds give 0.9, 0.8 or 0.7 at the first step, so the interval lies in [0.1, 0.3].
    hl = peak["hl_gauss"]
    assert math.isclose(hl[0], 0.2) and 0.1 - 1e-9 <= hl[1] <= hl[2] <= 0.3 + 1e-9
