"""Value range from the data: stored by convert/collect, used or checked by `train`."""

from __future__ import annotations

import numpy as np
import pytest

from qtransformer.commands.cli import main
from qtransformer.datasets import Episode, read_meta, write_dataset
from qtransformer.datasets.conventions import RewardStats
from qtransformer.training.config import TrainConfig
from qtransformer.training.value_range import data_value_range, resolve


def _dataset(path, rewards_list, terminals):
    episodes = [
        Episode(
            states=np.zeros((len(r) + 1, 2)),
            actions=np.zeros((len(r), 1)),
            rewards=r,
            terminal=terminal,
            instruction="i",
            task="t",
            source="s",
        )  # fmt: skip
        for r, terminal in zip(rewards_list, terminals, strict=True)
    ]
    return write_dataset(path, episodes, action_low=[-1], action_high=[1])


@pytest.fixture(scope="module")
def multi_step(tmp_path_factory):
    # robomimic-like: reward 1 on the last two steps of a terminal episode; a 0-reward time-out.
    path = tmp_path_factory.mktemp("vr") / "multi"
    return _dataset(path, [[0, 0, 1, 1.0], [0, 0, 0.0]], [True, False])


def test_metadata_and_scan_agree(multi_step):
    stats = read_meta(multi_step).reward_stats
    assert stats["return_gamma"] == 0.98 and stats["value_range"] == pytest.approx([0, 1.98])
    # Another gamma: recomputed from the rewards, equal to the closed form 1 + g.
    lo, hi, scanned = data_value_range(multi_step, 0.5)
    assert (lo, hi) == pytest.approx((0.0, 1.5)) and scanned["return_gamma"] == 0.5
    expected = RewardStats(0.5)
    expected.add(np.array([0, 0, 1, 1.0]), True)
    expected.add(np.zeros(3), False)
    assert scanned == expected.as_dict()


def test_resolve_from_data_and_refusal(multi_step):
    config, line = resolve(TrainConfig(), multi_step)
    assert (config.model.v_min, config.model.v_max) == pytest.approx((0.0, 1.98))
    assert line.startswith("value range [0, 1.98] from the dataset")
    # An explicit range that holds the data is kept; one that cannot is refused.
    wide = TrainConfig().replace(v_min=-1.0, v_max=5.0, v_from_data=False)
    assert resolve(wide, multi_step)[0].model.v_max == 5.0
    narrow = TrainConfig().replace(v_max=1.0, v_from_data=False)
    with pytest.raises(ValueError, match=r"--v-min/--v-max \[0, 1\] cannot hold .* \[0, 1.98\]"):
        resolve(narrow, multi_step)
    # Behaviour cloning has no values to check.
    assert resolve(narrow.replace(loss="bc"), multi_step)[0] == narrow.replace(loss="bc")


def test_sparse_data_keeps_unit_range_and_dense_timeouts_widen(tmp_path):
    sparse = _dataset(tmp_path / "sparse", [[0, 0, 1.0], [0, 0.0]], [True, False])
    config, _ = resolve(TrainConfig(), sparse)
    assert (config.model.v_min, config.model.v_max) == (0.0, 1.0)
    # Time-outs with a per-step reward of 0.5: values bootstrap up to 0.5 / (1 - 0.98).
    dense = _dataset(tmp_path / "dense", [[0.5, 0.5, 0.5]], [False])
    config, line = resolve(TrainConfig(), dense)
    assert config.model.v_max == pytest.approx(25.0) and "bootstrap" in line


def test_train_cli_refuses_support_that_cannot_hold_returns(multi_step, tmp_path, capsys):
    code = main(
        ["train", "--dataset", str(multi_step), "--workdir", str(tmp_path / "w"),
         "--v-max", "1", "--steps", "1", "--no-progress"]
    )  # fmt: skip
    assert code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]  # our one line (library noise aside)
    assert last.startswith("qtransformer train: error: --v-min/--v-max [0, 1] cannot hold")
    assert not (tmp_path / "w").exists()
