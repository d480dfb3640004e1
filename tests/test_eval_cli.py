"""`qtransformer eval` from the command line: report fields, video, errors."""

import json
import subprocess
import sys

from qtransformer.eval import metrics


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "qtransformer", *args], capture_output=True, text=True, timeout=300
    )


def test_eval_baseline_writes_report_and_video(tmp_path):
    report_path, video = tmp_path / "r" / "expert.json", tmp_path / "expert.mp4"
    result = _cli("eval", "--baseline", "expert", "--task", "pick_place", "--episodes", "3",
                  "--seed", "7", "--report", str(report_path), "--video", str(video),
                  "--video-episodes", "2", "--no-progress")  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(report_path.read_text())
    for key in ("success_rate", "success_ci95", "mean_return", "mean_episode_length",
                "episodes", "policy", "seed", "task"):  # fmt: skip
        assert key in report, key
    assert report["episodes"] == 3 and report["seed"] == 7 and report["policy"] == "expert"
    k = round(report["success_rate"] * 3)
    assert report["success_ci95"] == list(metrics.wilson_interval(k, 3))
    assert video.stat().st_size > 1000
    assert "expert" in result.stdout and "95% CI" in result.stdout


def test_eval_missing_policy_dir_fails_naming_it(tmp_path):
    missing = tmp_path / "no_such_policy"
    result = _cli("eval", "--policy", str(missing), "--episodes", "2")
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]  # TF may log above it
    assert last.startswith("qtransformer eval: error:") and str(missing) in last
