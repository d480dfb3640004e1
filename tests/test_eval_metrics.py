"""Wilson interval, report summary, atomic report writing and the summary table."""

import json

import numpy as np
import pytest

from qtransformer.eval import metrics


def test_wilson_8_of_10_by_hand():
    # p = 0.8, z^2 = 3.8416, z^2/n = 0.38416, 1 + z^2/n = 1.38416
    # centre = (0.8 + 0.19208) / 1.38416 = 0.716738
    # half   = 1.96 / 1.38416 * sqrt(0.8*0.2/10 + 3.8416/400)
    #        = 1.416022 * sqrt(0.025604) = 1.416022 * 0.160012 = 0.226581
    low, high = metrics.wilson_interval(8, 10)
    assert low == pytest.approx(0.490157, abs=1e-5)
    assert high == pytest.approx(0.943319, abs=1e-5)


def test_wilson_0_of_20_by_hand():
    # p = 0: centre = half = (z^2 / 2n) / (1 + z^2/n) = 0.09604 / 1.19208 = 0.080565,
    # so low = 0 and high = z^2 / (n + z^2) = 3.8416 / 23.8416 = 0.161130 (closed form).
    low, high = metrics.wilson_interval(0, 20)
    assert low == pytest.approx(0.0, abs=1e-12)
    assert high == pytest.approx(3.8416 / 23.8416, abs=1e-9)
    assert high == pytest.approx(0.161130, abs=1e-6)


@pytest.mark.parametrize("k,n", [(3, 7), (50, 50), (1, 100), (37, 64)])
def test_wilson_matches_quadratic_roots(k, n):
    # Second method: the interval is {p0 : (p - p0)^2 = z^2 p0 (1 - p0) / n}, i.e. the roots of
    # (1 + z^2/n) p0^2 - (2p + z^2/n) p0 + p^2 = 0.
    z2, p = 1.96**2, k / n
    roots = np.sort(np.roots([1 + z2 / n, -(2 * p + z2 / n), p * p]).real)
    low, high = metrics.wilson_interval(k, n)
    assert low == pytest.approx(max(0.0, roots[0]), abs=1e-9)
    assert high == pytest.approx(min(1.0, roots[1]), abs=1e-9)
    assert low <= p <= high


def test_wilson_rejects_bad_counts():
    with pytest.raises(ValueError, match="successes=5, n=3"):
        metrics.wilson_interval(5, 3)
    assert metrics.wilson_interval(0, 0) == (0.0, 1.0)


def test_summarize_and_atomic_write(tmp_path):
    report = metrics.summarize([True, False, True, True], [1.0, 0.0, 1.0, 1.0], [20, 80, 30, 50])
    assert report["success_rate"] == 0.75
    assert report["mean_return"] == 0.75
    assert report["mean_episode_length"] == 45.0
    assert report["episodes"] == 4
    assert report["success_ci95"] == list(metrics.wilson_interval(3, 4))
    path = metrics.write_report(report, tmp_path / "sub" / "r.json")
    assert json.loads(path.read_text()) == report
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]  # no temp file left behind
    assert metrics.read_report(path) == report


def test_write_report_keeps_old_file_on_failure(tmp_path):
    path = metrics.write_report({"success_rate": 1.0}, tmp_path / "r.json")
    with pytest.raises(TypeError):
        metrics.write_report({"success_rate": object()}, path)  # not JSON serialisable
    assert json.loads(path.read_text()) == {"success_rate": 1.0}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_read_report_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.json"):
        metrics.read_report(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="bad.json"):
        metrics.read_report(tmp_path / "bad.json")


def test_table_has_a_row_per_task():
    a = metrics.summarize([True], [1.0], [10])
    b = metrics.summarize([False], [0.0], [80])
    report = {
        **metrics.summarize([True, False], [1.0, 0.0], [10, 80]),
        "per_task": {"lift": a, "stack": b},
    }
    table = metrics.format_table(metrics.table_rows(report, "expert")).splitlines()
    assert len(table) == 4
    assert table[1].startswith("expert") and "50.0%" in table[1]
    assert "lift" in table[2] and "100.0%" in table[2]
    assert "stack" in table[3] and "0.0%" in table[3]
