"""Typed configuration, built once at the command line and passed down.

`TrainConfig` holds everything `qtransformer train` needs; `--config FILE.json`
loads a JSON object whose keys are field names, and explicit flags override it.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from qtransformer.commands import flags

LOSSES = ("hl_gauss", "two_hot", "c51", "mse", "mse_linear", "bc")
# Losses whose network outputs a value distribution over `value_bins` (the rest: one scalar).
CLASSIFICATION = ("hl_gauss", "two_hot", "c51")
# Forms of the conservative regulariser for the classification losses (TrainConfig.conservative).
CONSERVATIVE_FORMS = ("distribution", "value")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """How RLDS episodes become training transitions.

    Attributes:
      action_bins: bins per action dimension. The paper used 256 on far more data; with a
        few hundred sim episodes every bin needs enough samples, so the default is 17 (see
        docs/benchmark.md, round one). Odd, so that a zero action (no motion) is a bin centre:
        with an even count an exact 0 becomes +half a bin, a one-sided drift. `--action-bins 256`
        gives the paper's size (`qtransformer bench`).
      n_step: reward steps summed before bootstrapping (Q-Transformer uses n-step returns).
      gamma: discount per control step.
      batch_size: transitions per training batch.
      shuffle_buffer: transitions held for shuffling across episodes.
      success_only: train on successful episodes only (`episode_metadata/success`); the
        `bc_filtered` baseline is BC with this set.
      history: W, the observations the Q network reads per decision: the last W steps of the
        episode, padded at its start by repeating the first (qtransformer/model/history.py; the
        Q-Transformer's Q(s_{t-W+1..t}, a)). 1 = the current observation only (`train
        --history W`).
    """

    action_bins: int = 17
    n_step: int = 3
    gamma: float = 0.98
    batch_size: int = 128
    shuffle_buffer: int = 20_000
    success_only: bool = False
    history: int = 1

    def __post_init__(self):
        _check_ranges(self, _DATACONFIG_RULES)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Size of the autoregressive Q network.

    Attributes:
      embed_dim: transformer width.
      num_layers: transformer blocks.
      num_heads: attention heads.
      value_bins: categories of the value distribution (classification losses).
      v_min, v_max: range of the values; rewards are sparse 0/1, so [0, 1]. v_min is also
        the value the conservative regulariser pushes unseen bins toward.
      v_from_data: `train` replaces v_min, v_max by the dataset's value range (metadata.json,
        qtransformer/training/value_range.py); false (`--v-min/--v-max`): use them as given,
        refused if they cannot hold the data's values.
      support_padding: bins of width w added beyond each end of [v_min, v_max] for the value
        distribution (see `value_support`): without them HL-Gauss cannot represent v_min or
        v_max themselves (a Gaussian cut at the edge has mean 0.02 and 0.98 on [0, 1]).
      head: "factorised" (cheap low-rank head, see model/network.py) or "full".
      head_rank: rank R of the factorised head (R MACs per value logit instead of embed_dim).
      dropout: dropout rate inside the transformer.
      image_shift: random-shift augmentation of observation images during training, in pixels
        (pad and random crop, DrQ; 4 is the usual value at 64x64); 0 = off.
        See model/image_encoder.py.
      mixed_precision: compute in bfloat16 (Keras "mixed_bfloat16": float32 variables,
        bfloat16 matmuls); logits, value distributions and losses stay float32. For GPUs/TPUs:
        on CPU it is slower (0.70x at the paper-like size here: this TensorFlow build has no
        AVX512-BF16 matmul kernels even on CPUs that have the instructions).
    """

    embed_dim: int = 64
    num_layers: int = 2
    num_heads: int = 4
    value_bins: int = 32
    v_min: float = 0.0
    v_max: float = 1.0
    v_from_data: bool = True
    support_padding: int = 3
    head: str = "factorised"
    head_rank: int = 32
    dropout: float = 0.0
    image_shift: int = 0
    mixed_precision: bool = False

    def __post_init__(self):
        _check_ranges(self, _MODELCONFIG_RULES)

    def value_support(self) -> tuple[float, float]:
        """(lo, hi) of the value distribution's bins: [v_min, v_max] padded on both sides.

        value_bins bins of width w = (v_max - v_min) / (value_bins - 2 p), p =
        support_padding, so [v_min, v_max] spans value_bins - 2p bins and p bins lie beyond
        each end. Example: v in [0, 1], 32 bins, p = 3: w = 1/26, support [-3/26, 29/26].
        """
        p = self.support_padding
        if self.value_bins - 2 * p < 1:
            raise ValueError(
                f"value_bins ({self.value_bins}) must exceed 2 * support_padding ({2 * p})"
            )
        width = (self.v_max - self.v_min) / (self.value_bins - 2 * p)
        return self.v_min - p * width, self.v_max + p * width


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Offline training.

    Attributes:
      loss: hl_gauss (default), two_hot, c51, mse (the paper's regression baseline: Q =
        v_min + (v_max - v_min) sigmoid(output), squared error), mse_linear (unbounded linear
        Q, squared error), or bc (behaviour cloning).
      steps: total gradient steps (a resumed run continues to this number).
      learning_rate: Adam step size.
      grad_clip: global-norm gradient clipping; 0 disables it (the default: Adam already
        normalises the step, and one fixed clip value binds the losses very differently, e.g.
        initial gradient norm ~24 for MSE against ~1.9 for HL-Gauss).
      alpha: weight of the conservative regulariser on bins not in the data.
      conservative: how the classification losses express that regulariser: "distribution"
        (the default: cross-entropy of each unseen bin's value distribution against the
        HL-Gauss/two-hot distribution of v_min) or "value" (0.5 (Q - v_min)^2 on the
        expected value Q, the squared-error form the MSE losses always use). An ablation knob
        for the HL-Gauss vs MSE gap (docs/benchmark.md); MSE losses ignore it.
      conservative_sigma: 0 (the default) pushes every bin but the data's alike; s > 0 (in
        bins) weights bin a by 1 - exp(-(a - a_data)^2 / (2 s^2)), so the data's neighbours,
        nearly the same action, are pushed down less (`targets.unseen_weights`).
      td_sigma: 0 (the default) trains the data's bin alone towards the TD target; s > 0 (in
        bins) also trains bin a towards it with weight exp(-(a - a_data)^2 / (2 s^2))
        (`targets.neighbour_weights`): a prior that neighbouring actions have about the same
        value, the Q-learners' counterpart of BC's ordered labels (`bc_action_sigma`).
        Measured (docs/stall.md, section 7): both sigmas at 1 bring HL-Gauss on 40 clean demos
        from 87.0% to 95.3% (BC: 99.0%), but give no gain on the papers' noisy data (69.7%
        against 72.7%, 6 seeds) and a lower peak through the benchmark's protocol (0.636
        against 0.728, section 8), so both default to 0, the papers' regulariser.
      mc_lower_bound: clip TD targets from below by the Monte-Carlo return.
      sigma_ratio: HL-Gauss sigma in bin widths (paper: 0.75).
      target_update_tau: Polyak rate of the target network (1.0 = copy).
      target_update_period: steps between target updates.
      checkpoint_every: steps between checkpoints (and policy exports).
      summary_every: steps between TensorBoard summaries.
      eval_every: steps between in-training evaluations (0 = never).
      eval_episodes: episodes per in-training evaluation.
      eval_task: sim task for in-training evaluation ("" = the dataset's task).
      seed: seed for initialisation and shuffling.
      strategy: default, mirrored, multi_worker or tpu.
      use_xla: XLA-compile the train step (`train --xla`). Off by default: on CPU,
        `qtransformer bench` measured it slower than plain tf.function (latest run: x0.67
        default size, x0.69 paper-like; docs/performance.md). Until `xla_decoder`
        existed it also covered the exported decoder, so an old config.json with only
        `use_xla` loads as: train step as it says, decoder XLA-compiled (the default).
      xla_decoder: XLA-compile the greedy decoder of the in-memory and exported policy
        (the numeric part; string lookup stays outside). On by default: faster at every
        size and batch measured (docs/performance.md); the first call for each batch
        size compiles (seconds at the default size, ~30 s at the paper-like size on 2 CPU
        cores). `train --no-xla-decoder` turns it off.
      bc_action_sigma: bc only (the other losses ignore it). The width, in bins, of the
        HL-Gauss label over the ordered action bins, N(bin, s^2) integrated over each bin, so
        that neighbouring bins share the label. 1 (the default) was chosen on validation
        episodes: on 40 clean demos it took BC from 84% to 98% on pick_place and from 49% to
        100% on stack (docs/stall.md, "Ordered action labels"); 0 trains on one-hot bins.
    """

    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    loss: str = "hl_gauss"
    steps: int = 8000
    learning_rate: float = 3e-4
    grad_clip: float = 0.0
    alpha: float = 1.0
    conservative: str = "distribution"
    conservative_sigma: float = 0.0
    td_sigma: float = 0.0
    mc_lower_bound: bool = True
    sigma_ratio: float = 0.75
    target_update_tau: float = 0.005
    target_update_period: int = 1
    checkpoint_every: int = 1000
    summary_every: int = 100
    eval_every: int = 0
    eval_episodes: int = 20
    eval_task: str = ""
    seed: int = 0
    strategy: str = "default"
    use_xla: bool = False
    xla_decoder: bool = True
    bc_action_sigma: float = 1.0

    def __post_init__(self):
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; valid: {', '.join(LOSSES)}")
        if self.conservative not in CONSERVATIVE_FORMS:
            raise ValueError(
                f"config field conservative: {self.conservative!r}; "
                f"valid: {', '.join(CONSERVATIVE_FORMS)}"
            )
        _check_ranges(self, _TRAIN_RULES)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, raw: dict) -> TrainConfig:
        raw = dict(raw)
        data = DataConfig(**_known(DataConfig, raw.pop("data", {}), "data"))
        model = ModelConfig(**_known(ModelConfig, raw.pop("model", {}), "model"))
        return cls(data=data, model=model, **_known(cls, raw, "top level"))

    @classmethod
    def from_file(cls, path: str | Path) -> TrainConfig:
        try:
            raw = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"cannot read config file {path}: {e}") from e
        return cls.from_dict(raw)

    def replace(self, **overrides) -> TrainConfig:
        """Copy with top-level, `data.*` or `model.*` fields overridden (None = keep)."""
        top, data, model = {}, {}, {}
        for key, value in overrides.items():
            if value is None:
                continue
            if key in {f.name for f in dataclasses.fields(DataConfig)}:
                data[key] = value
            elif key in {f.name for f in dataclasses.fields(ModelConfig)}:
                model[key] = value
            else:
                top[key] = value
        return dataclasses.replace(
            self,
            data=dataclasses.replace(self.data, **data),
            model=dataclasses.replace(self.model, **model),
            **top,
        )


def _known(cls, raw: dict, where: str) -> dict:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise ValueError(f"unknown config keys at {where}: {unknown}; valid: {sorted(names)}")
    return raw


# Range of every numeric field (the same rules as the CLI flags, see commands/flags.py): a JSON
# config is refused with the field named, before any work is done.
_DATACONFIG_RULES = {
    "action_bins": flags.bins,
    "n_step": flags.positive_int,
    "gamma": flags.unit_interval_open_closed,
    "batch_size": flags.positive_int,
    "shuffle_buffer": flags.positive_int,
    "history": flags.positive_int,
}
_MODELCONFIG_RULES = {
    "embed_dim": flags.positive_int,
    "num_layers": flags.positive_int,
    "num_heads": flags.positive_int,
    "value_bins": flags.bins,
    "v_min": flags.finite_float,
    "v_max": flags.finite_float,
    "support_padding": flags.nonneg_int,
    "head_rank": flags.positive_int,
    "dropout": flags.unit_interval_closed_open,
    "image_shift": flags.nonneg_int,
}
_TRAIN_RULES = {
    "steps": flags.positive_int,
    "learning_rate": flags.positive_float,
    "grad_clip": flags.nonneg_float,
    "alpha": flags.nonneg_float,
    "sigma_ratio": flags.positive_float,
    "target_update_tau": flags.unit_interval_open_closed,
    "target_update_period": flags.positive_int,
    "checkpoint_every": flags.positive_int,
    "summary_every": flags.positive_int,
    "eval_every": flags.nonneg_int,
    "eval_episodes": flags.positive_int,
    "seed": flags.seed,
    "bc_action_sigma": flags.nonneg_float,
    "conservative_sigma": flags.nonneg_float,
    "td_sigma": flags.nonneg_float,
}
_WHERE = {"DataConfig": "data.", "ModelConfig": "model.", "TrainConfig": ""}


def _check_ranges(config, rules: dict) -> None:
    """Raise ValueError naming the first field outside its range (see commands/flags.py)."""
    prefix = _WHERE.get(type(config).__name__, "")
    for name, rule in rules.items():
        if hasattr(config, name):
            rule.check(getattr(config, name), f"config field {prefix}{name}")
    if isinstance(config, ModelConfig):
        if config.v_min >= config.v_max:
            raise ValueError(
                f"config fields model.v_min ({config.v_min}) must be below model.v_max "
                f"({config.v_max}) (--v-min/--v-max)"
            )
        if config.embed_dim % config.num_heads:
            raise ValueError(
                f"--embed-dim ({config.embed_dim}) must be a multiple of --heads "
                f"({config.num_heads}) (config fields model.embed_dim, model.num_heads)"
            )
