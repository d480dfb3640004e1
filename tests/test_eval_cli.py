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


XLA_BANNER = ("absl::InitializeLog", "Compiled cluster using XLA")


def test_eval_of_an_xla_policy_hides_the_absl_banner_unless_verbose(tmp_path):
    """The exported decoder is XLA-compiled by default; its first compile prints two absl
    lines that TF_CPP_MIN_LOG_LEVEL cannot hide: quiet.hide_xla_banner swallows them."""
    from tf_agents.policies import policy_saver

    from qtransformer import sim_envs
    from qtransformer.tools import benchmarks
    from qtransformer.training.config import TrainConfig

    config = TrainConfig().replace(embed_dim=16, num_layers=1, num_heads=2, action_bins=9)
    agent = benchmarks.make_agent(config)  # state [16]: the privileged observation's size
    assert sim_envs.make("pick_place", seed=0).observation_spec()["state"].shape == (16,)
    assert agent._config.xla_decoder
    policy_saver.PolicySaver(agent.policy, batch_size=None).save(str(tmp_path / "policy"))
    args = ("eval", "--policy", str(tmp_path / "policy"), "--episodes", "2", "--no-progress")
    quiet = _cli(*args)
    assert quiet.returncode == 0, quiet.stderr
    assert "success" in quiet.stdout.lower()
    assert not [line for line in quiet.stderr.splitlines() if any(b in line for b in XLA_BANNER)]
    verbose = _cli("--verbose", *args)  # the control: the lines exist and were hidden
    assert verbose.returncode == 0, verbose.stderr
    assert all(b in verbose.stderr for b in XLA_BANNER)
