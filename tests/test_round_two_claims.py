"""scripts/round_two_claims.py on hand-made test runs: peaks, ratios, differences, intervals."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("claims", ROOT / "scripts/round_two_claims.py")
claims = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(claims)


def write_runs(folder: Path, method: str, rates: list[list[float]], params=None) -> None:
    for seed, per_step in enumerate(rates):
        points = [{"step": 2000 * (i + 1), "success_rate": r, "successes": round(100 * r),
                   "episodes": 100} for i, r in enumerate(per_step)]  # fmt: skip
        run = {"method": method, "params": params or {"alpha": 1.0}, "seed": seed,
               "points": points}  # fmt: skip
        (folder / f"test_{method}_x_seed{seed}.json").write_text(json.dumps(run))


def test_claims_by_hand(tmp_path):
    # HL-Gauss: seed means over steps 0.5, 0.7 (peak, step 2), 0.6 (final).
    write_runs(tmp_path, "hl_gauss", [[0.4, 0.6, 0.6], [0.6, 0.8, 0.6]])
    # MSE: identical seeds, peak 0.4 at step 1, final 0.3: a zero-width bootstrap.
    write_runs(tmp_path, "mse", [[0.4, 0.35, 0.3], [0.4, 0.35, 0.3]])
    write_runs(tmp_path, "bc_filtered", [[0.8, 0.8, 0.7], [0.8, 0.8, 0.7]])
    rates = claims.load_rates(tmp_path)
    np.testing.assert_allclose(rates["hl_gauss"], [[0.4, 0.6, 0.6], [0.6, 0.8, 0.6]])
    rows = {r["claim"]: r for r in claims.claims(rates)}
    mse = rows["HL-Gauss >= 1.5x MSE"]
    assert mse["peak"]["value"] == pytest.approx(0.7 / 0.4)  # 1.75: holds
    assert mse["final"]["value"] == pytest.approx(0.6 / 0.3)  # 2.0
    assert mse["peak"]["holds"] and mse["final"]["holds"]
    # Resampling HL's two seeds: peaks of (s0, s0) 0.6, (s1, s1) 0.8, mixed 0.7 -> ratios
    # 1.5 .. 2.0, so the interval lies within them and clears 1.5 only at its lower end.
    lo, hi = mse["peak"]["ci95"]
    assert 0.6 / 0.4 - 1e-9 <= lo <= hi <= 0.8 / 0.4 + 1e-9
    filt = rows["HL-Gauss > BC on successful episodes"]
    assert filt["peak"]["value"] == pytest.approx(0.7 - 0.8)
    assert not filt["peak"]["holds"] and not filt["peak"]["interval_clears"]
    assert rows["HL-Gauss >= 2x BC on all episodes"]["missing"] == ["bc"]


def test_mixed_configurations_are_refused(tmp_path):
    write_runs(tmp_path, "mse", [[0.4]], params={"alpha": 1.0})
    (tmp_path / "test_mse_y_seed1.json").write_text(json.dumps(
        {"method": "mse", "params": {"alpha": 3.0}, "seed": 1,
         "points": [{"step": 2000, "success_rate": 0.5}]}))  # fmt: skip
    with pytest.raises(ValueError, match="mse has test runs of 2 configurations"):
        claims.load_rates(tmp_path)


def test_non_inferiority_margin_by_hand(tmp_path):
    # Pre-registered rule (docs/stall.md section 8): variant >= HL-Gauss - 0.05.
    write_runs(tmp_path, "hl_gauss", [[0.7, 0.6], [0.7, 0.6]])
    rates = claims.load_rates(tmp_path)
    rates["hl_gauss_td1cs1"] = np.array([[0.66, 0.50], [0.66, 0.50]])
    row = {r["claim"]: r for r in claims.claims(rates)}["HL-Gauss td 1, cs 1 >= HL-Gauss - 0.05"]
    assert row["peak"]["value"] == pytest.approx(0.66 - 0.7)  # -0.04: within the margin
    assert row["peak"]["holds"] and row["peak"]["interval_clears"]  # identical seeds: no spread
    assert row["final"]["value"] == pytest.approx(0.50 - 0.6)  # -0.10: outside it
    assert not row["final"]["holds"]
