"""The cached experiment runs in eval/results stay readable by `experiment` and its status script.

A run cache holds one JSON per finished run (`qtransformer experiment --cache`): method,
hyperparameters, training seed, and the success at each evaluated step. Round one's cache is
committed; its summaries must still give the numbers of eval/results/pick_place_round1.json.
"""

import importlib.util
import json
from pathlib import Path

import pytest

from qtransformer.eval.experiment import METHODS, summarize_method

RESULTS = Path(__file__).resolve().parent.parent / "eval" / "results"
ROUND_ONE = RESULTS / "pick_place_round1_runs"


def runs_by_method(folder: Path) -> dict[str, list[dict]]:
    """{method: [run]} of the folder's test runs (test_*.json)."""
    runs: dict[str, list[dict]] = {}
    for path in sorted(folder.glob("test_*.json")):
        run = json.loads(path.read_text())
        runs.setdefault(run["method"], []).append(run)
    return runs


# Every folder of run JSONs (tune_*.json, test_*.json) under eval/results: the experiment caches,
# the ablations' caches. Other JSONs beside them (a sweep's results file) are not runs.
RUN_PATTERNS = ("tune_*.json", "test_*.json")
CACHES = sorted(
    {str(p.parent.relative_to(RESULTS)) for pattern in RUN_PATTERNS
     for p in RESULTS.glob(f"*/**/{pattern}")}
)  # fmt: skip


@pytest.mark.parametrize("folder", CACHES)
def test_every_cached_run_has_the_fields_experiment_reads(folder):
    paths = sorted(p for pattern in RUN_PATTERNS for p in (RESULTS / folder).glob(pattern))
    assert paths, folder
    for path in paths:
        run = json.loads(path.read_text())
        assert run["method"] in METHODS, path
        assert isinstance(run["params"], dict) and isinstance(run["seed"], int), path
        for point in run["points"]:
            assert {"step", "successes", "episodes", "success_rate"} <= set(point), path


def test_round_one_cache_summarises_to_its_results():
    runs = runs_by_method(ROUND_ONE)
    results = json.loads((RESULTS / "pick_place_round1.json").read_text())["methods"]
    assert sorted(runs) == sorted(results) == sorted(METHODS)
    for method, curves in runs.items():
        summary = summarize_method(curves, curves[0]["points"][-1]["episodes"])
        assert summary["seeds"] == 5
        for key in ("seed_mean", "peak_success", "final_success"):
            assert summary[key] == pytest.approx(results[method][key]), (method, key)
    hl_gauss = summarize_method(runs["hl_gauss"], 100)
    assert hl_gauss["seed_mean"] == pytest.approx(0.046)
    assert hl_gauss["per_seed_final"] == pytest.approx([0.10, 0.03, 0.02, 0.05, 0.03])


def test_status_script_reads_round_one(capsys, tmp_path):
    path = Path(__file__).resolve().parent.parent / "scripts" / "experiment_status.py"
    spec = importlib.util.spec_from_file_location("experiment_status", path)
    status = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(status)
    assert status.main([str(ROUND_ONE), "--plot", str(tmp_path / "partial")]) == 0
    assert (tmp_path / "partial.png").stat().st_size > 0
    out = capsys.readouterr().out
    assert "| tune (validation) | hl_gauss | {'alpha': 10.0, 'learning_rate': 0.001} |" in out
    hl_gauss = next(line for line in out.splitlines() if line.startswith("hl_gauss "))
    assert hl_gauss.split()[1:4] == ["5", "0.060", "0.046"]  # seeds, peak, final
