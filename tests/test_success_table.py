"""scripts/success_table.py: one row per report, in name order, with the report's numbers."""

import importlib.util
import json
from pathlib import Path

from qtransformer.eval.metrics import wilson_interval

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("success_table", ROOT / "scripts/success_table.py")
success_table = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(success_table)


def test_rows_carry_each_reports_counts_and_interval(tmp_path, capsys):
    for name, wins in (("b_run", 34), ("a_run", 50)):
        (tmp_path / name).mkdir()
        lo, hi = wilson_interval(wins, 50)
        report = {"successes": wins, "episodes": 50, "success_rate": wins / 50,
                  "success_ci95": [lo, hi]}  # fmt: skip
        (tmp_path / name / "eval.json").write_text(json.dumps(report))
    (tmp_path / "a_run" / "other.json").write_text("{}")  # not matched by the glob
    assert success_table.main([str(tmp_path), "*/eval.json"]) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    # 34/50 = 0.68, Wilson [0.542, 0.792] by the formula; 50/50 = 1.00, [0.929, 1]
    assert rows[2:] == [
        "| a_run (eval) | 50/50 = 1.00 [0.93, 1.00] |",
        "| b_run (eval) | 34/50 = 0.68 [0.54, 0.79] |",
    ]
    assert success_table.main([str(tmp_path)]) == 2  # the usage, not a traceback
