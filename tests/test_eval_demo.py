"""`qtransformer demo --quick`: the whole pipeline end to end, then a resumed re-run."""

import json

from qtransformer.commands.cli import main
from qtransformer.eval import metrics


def test_demo_quick_end_to_end_and_resume(tmp_path, capsys):
    workdir = tmp_path / "demo"
    assert main(["demo", "--quick", "--workdir", str(workdir), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    for name in ("trained", "random", "expert"):
        report = json.loads((workdir / "reports" / f"{name}.json").read_text())
        assert report["episodes"] == 5 and report["task"] == "pick_place"
        k = round(report["success_rate"] * 5)
        assert report["success_ci95"] == list(metrics.wilson_interval(k, 5))
        assert name in printed
    assert json.loads((workdir / "reports" / "expert.json").read_text())["success_rate"] >= 0.6
    assert (workdir / "train" / "policy" / "saved_model.pb").exists()
    assert (workdir / "eval.mp4").stat().st_size > 1000
    for png in ("learning_curves.png", "success_rates.png"):
        assert (workdir / "plots" / png).stat().st_size > 1000
    for label in ("dataset", "checkpoints", "policy", "reports", "video", "plots"):
        assert any(line.startswith(label) for line in printed.splitlines()), label

    # Re-run on the same workdir: the dataset is reused, training resumes (nothing left to do).
    dataset_files = sorted(p.stat().st_mtime_ns for p in (workdir / "dataset").rglob("*"))
    assert main(["demo", "--quick", "--workdir", str(workdir), "--no-progress"]) == 0
    assert "reusing it" in capsys.readouterr().out
    assert sorted(p.stat().st_mtime_ns for p in (workdir / "dataset").rglob("*")) == dataset_files


def test_full_demo_trains_at_the_benchmarks_tuned_settings_and_quick_at_the_defaults():
    from qtransformer.eval import demo
    from qtransformer.training.config import TrainConfig

    defaults = TrainConfig()
    full = demo.train_config(demo.FULL, seed=3)
    assert (full.learning_rate, full.alpha, full.loss) == (1e-3, 10.0, "hl_gauss")
    assert (full.steps, full.seed, full.eval_every, full.eval_task) == (
        defaults.steps, 3, 1000, "pick_place",
    )  # fmt: skip
    quick = demo.train_config(demo.QUICK, seed=0)
    assert (quick.learning_rate, quick.alpha, quick.steps) == (
        defaults.learning_rate, defaults.alpha, 50,
    )  # fmt: skip
    pixels = demo.train_config(demo.PIXELS, seed=0, obs="pixels")
    assert (pixels.learning_rate, pixels.model.image_shift) == (defaults.learning_rate, 4)
