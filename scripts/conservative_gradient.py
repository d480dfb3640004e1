"""How hard the conservative regulariser pushes, per Q loss, relative to the TD term (issue 22).

    python scripts/conservative_gradient.py --dataset runs/tail_study/data_hold \\
        --train-steps 500 --checkpoint hl_gauss=runs/tail_study/hold_hl_gauss \\
        --checkpoint mse=runs/tail_study/hold_mse --out /tmp/conservative_gradient.json

(docs/conservative_weight.md has the three commands behind its tables and their results.)

The agent's loss is L = TD + alpha * C (qtransformer/model/agent.py). For each loss (hl_gauss,
two_hot, c51, mse; `--losses`) this measures, on the same `--batches` real batches of the
dataset, the norms of dTD and dC with respect to the network's outputs (the logits [B, D, A, V],
or [B, D, A] for mse) and with respect to its parameters, at

- `fresh`: freshly initialised networks (`--fresh-seeds` of them from `--seed`; the table
  gives the mean and, for R param, the standard deviation over them),
- `trainedN`: the same network after N = `--train-steps` Adam steps at alpha 1 and
  `--learning-rate` (default 1e-3, round one's winning rate); `trainedN_aX`: trained at
  alpha X instead (`--alphas 0.1,1,10`: one run from the fresh network per alpha),
- `ckpt`: the latest checkpoint of each `--checkpoint LOSS=WORKDIR` (its own config.json).

R = |dC| / |dTD| is the conservative share at alpha = 1; at weight alpha it is alpha * R, so
the loss's alpha that gives the conservative term the share MSE has at alpha = 1 (the
"equivalent alpha") is R_mse / R_loss, taken at the same state. Adam divides by the running
gradient scale, so only this share (and the directions) matter, not the absolute norms. The
script also prints the mean Q of the data's and the unseen bins and the mean TD target, the
mean per-bin output gradient of each term (undoing the means over B, D and the A - 1 unseen
bins), the cosine between the two parameter gradients, and for the classification losses the
share R value param that the "value" form of C (`--conservative value`, 1/2 (Q - v_min)^2 on
the expected Q) would have on the same network. CPU: about 40 s per 500 training steps, a
few seconds per measured network.

Closed forms the per-bin numbers follow (checked in tests/test_conservative_gradient.py):

- mse, one unseen bin: Q = sigma(z) on [v_min, v_max] = [0, 1], C_a = 1/2 Q^2, so
  dC_a/dz = Q sigma'(z) = Q^2 (1 - Q): 0.125 at Q = 0.5, 0.009 at Q = 0.1,
  0.000873 at Q = 0.03 (the review's "0.0009"), 9.9e-5 at Q = 0.01. The TD term of the data's
  bin gives (Q - y) Q (1 - Q).
- hl_gauss / two_hot / c51, one unseen bin: C_a = -sum_v p_v log softmax(z)_v with p the
  target distribution of v_min, so dC_a/dz = softmax(z) - p, whose L2 norm on the default
  support (32 bins on [-3/26, 29/26]; p(v_min) for HL-Gauss = [.0038, .0874, .4088, .4088,
  .0874, .0038] on bins 0..5, two-hot = [.5, .5] on bins 2, 3) is 0.564 (HL-Gauss) and 0.685
  (two-hot) at a uniform prediction, 0.379 / 0.614 when the prediction is the loss's own target
  distribution of y = 0.03 (mean Q = 0.03), and ~0.84 / ~1.0 for that of y = 0.3..1. It
  vanishes only as softmax(z) -> p; a prediction (1 - l) p + l onehot(k) with mean Q = l c_k
  gives l |onehot(k) - p|, linear in Q (e.g. 0.07 at Q = 0.03 with c_k = 0.5), where mse's
  Q^2 (1 - Q) is quadratic.

The per-bin numbers compare different output parametrisations (one sigmoid logit against 32
softmax logits), so the verdict rests on the ratio R, which each loss takes against its own TD
gradient on the same outputs and parameters.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import tensorflow as tf

from qtransformer.model import losses, targets
from qtransformer.model.agent import QTransformerAgent
from qtransformer.model.network import word_vocabulary
from qtransformer.training import value_range
from qtransformer.training.config import TrainConfig
from qtransformer.training.data import make_transition_dataset
from qtransformer.training.train import state_statistics

LOSSES = ("hl_gauss", "two_hot", "c51", "mse")


def mse_bin_gradient(q: float) -> float:
    """d/dz of 1/2 Q^2 with Q = sigmoid(z) (v_min = 0, v_max = 1): Q^2 (1 - Q)."""
    return q * q * (1.0 - q)


def ce_logit_gradient(logits: np.ndarray, target: np.ndarray) -> np.ndarray:
    """d/dz of -sum_v p_v log softmax(z)_v: softmax(z) - p."""
    e = np.exp(logits - np.max(logits, axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True) - target


def term_gradients(agent: QTransformerAgent, batch: dict) -> dict:
    """Norms of dTD and dC (the conservative term at alpha = 1) on one batch.

    Returns floats: td_out, cons_out (L2 norm of the gradient wrt the network outputs),
    td_param, cons_param (global norm wrt the trainable variables), cos_param (cosine of the
    two parameter gradients), td_bin, cons_bin (mean per-bin output gradient norm: the data's
    bin for TD, each unseen bin for C, before the means over B, D and the A - 1 unseen bins),
    value_out, value_param, value_bin (the same for the "value" form of C, 1/2 (Q - v_min)^2 on
    the expected value, on the same outputs: what `--conservative value` would push with here;
    for mse, C itself),
    q_data, q_unseen (mean Q of the data's / unseen bins), target (mean TD target of the data's
    bins, after the MC lower bound).
    """
    bins = tf.cast(batch["action_bins"], tf.int32)
    y, y_bounded, t_out, q_t = agent._targets(batch, bins)  # noqa: SLF001 - stop-gradient'ed
    variables = agent.q_network.trainable_variables
    model = agent._config.model  # noqa: SLF001
    with tf.GradientTape(persistent=True) as tape:
        logits = agent.q_network((batch["observation"], bins), training=False)[0]
        _, metrics = agent._loss_from_outputs(logits, bins, y, y_bounded, t_out, q_t, batch)  # noqa: SLF001
        terms = {"td": metrics["td_loss"], "cons": metrics["conservative"]}
        if len(logits.shape) == 4:  # the "value" form on the same outputs: 1/2 (Q - v_min)^2
            q_all = agent.q_values(logits)
            terms["value"] = targets.unseen_average(losses.mse(q_all, model.v_min), bins)
    num_b, num_d, num_a = logits.shape[:3]
    unseen = 1.0 - tf.one_hot(bins, num_a)  # [B, D, A]
    out, flat = {}, {}
    for name, term in terms.items():
        g_out = tape.gradient(term, logits)
        g_par = [tf.convert_to_tensor(g) for g in tape.gradient(term, variables) if g is not None]
        flat[name] = tf.concat([tf.reshape(g, [-1]) for g in g_par], 0)
        out[f"{name}_out"] = float(tf.norm(g_out))
        out[f"{name}_param"] = float(tf.norm(flat[name]))
        per_bin = tf.norm(g_out, axis=-1) if len(g_out.shape) == 4 else tf.abs(g_out)
        if name == "td":
            out["td_bin"] = float(tf.reduce_mean(targets.taken(per_bin, bins)) * num_b * num_d)
        else:
            scale = num_b * num_d * (num_a - 1)
            mean = tf.reduce_sum(per_bin * unseen) / tf.reduce_sum(unseen)
            out[f"{name}_bin"] = float(mean * scale)
    del tape
    for key in ("out", "param", "bin"):  # mse: its only form is the value form
        out.setdefault(f"value_{key}", out[f"cons_{key}"])
    dot = tf.reduce_sum(flat["td"] * flat["cons"])
    out["cos_param"] = float(dot / (tf.norm(flat["td"]) * tf.norm(flat["cons"]) + 1e-30))
    q_all = agent.q_values(logits)
    out["q_data"] = float(tf.reduce_mean(targets.taken(q_all, bins)))
    out["q_unseen"] = float(tf.reduce_sum(q_all * unseen) / tf.reduce_sum(unseen))
    out["target"] = float(metrics["mean_target"])
    return out


def measure(agent: QTransformerAgent, batches: list) -> dict:
    """Mean of `term_gradients` over the batches, with the ratios R = cons / td."""
    rows = [term_gradients(agent, b) for b in batches]
    mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    mean["ratio_out"] = float(np.mean([r["cons_out"] / r["td_out"] for r in rows]))
    mean["ratio_param"] = float(np.mean([r["cons_param"] / r["td_param"] for r in rows]))
    mean["ratio_value_param"] = float(np.mean([r["value_param"] / r["td_param"] for r in rows]))
    return mean


def fresh_agent(config: TrainConfig, meta, state_stats) -> QTransformerAgent:
    """An agent built as `train` builds it (`state_stats` as `train` computes them), initialised.

    Its initial values are not reproducible from `config.seed` alone (the measured fresh
    numbers move between runs of the same seed), hence `--fresh-seeds`.
    """
    from qtransformer.training.export import policy_specs

    tf.random.set_seed(config.seed)
    time_step_spec, action_spec = policy_specs(meta)
    agent = QTransformerAgent(
        time_step_spec, action_spec, config, word_vocabulary(meta.instructions),
        state_stats=state_stats,
    )  # fmt: skip
    agent.initialize()
    return agent


def train(agent: QTransformerAgent, dataset: str, config: TrainConfig, steps: int) -> float:
    """`steps` Adam steps of `agent.train` on the dataset's batches; returns the last loss."""
    batches = iter(make_transition_dataset(dataset, config.data, seed=config.seed)[0])
    step = tf.function(agent.train)
    loss = float("nan")
    for _ in range(steps):
        loss = step(next(batches)).loss
    return float(loss)


def restore(workdir: str, meta) -> tuple[QTransformerAgent, TrainConfig, int]:
    """(agent with WORKDIR's latest checkpoint, its config, its step)."""
    from qtransformer.eval.diagnose import restore_agent

    config = TrainConfig.from_file(Path(workdir) / "config.json")
    agent, step = restore_agent(Path(workdir), meta, config)
    return agent, config, step


def aggregate(results: list[dict]) -> list[dict]:
    """One row per (state, loss): the mean of its rows (several fresh seeds), with n and the
    standard deviation of R param over them."""
    groups: dict = {}
    for r in results:
        groups.setdefault((r["state"], r["loss"]), []).append(r)
    rows = []
    for (state, loss), group in groups.items():
        row = {"state": state, "loss": loss, "n": len(group)}
        for key, value in group[0].items():
            if isinstance(value, float) and key not in ("alpha", "train_loss"):
                row[key] = float(np.mean([g[key] for g in group]))
        row["ratio_param_sd"] = float(np.std([g["ratio_param"] for g in group]))
        rows.append(row)
    return rows


def table(rows: list[dict]) -> str:
    """Markdown table of `aggregate` rows; equivalent alpha = R_mse / R_loss at the same state
    (fresh: of the means over seeds)."""
    mse = {r["state"]: r for r in rows if r["loss"] == "mse"}
    lines = [
        "| state | loss | n | TD out | C out | R out | TD param | C param | R param | "
        "alpha_eq out | alpha_eq param | R value param | cos | TD/bin | C/bin | Q data | "
        "target | Q unseen |",
        "|" + "---|" * 18,
    ]
    for r in rows:
        ref = mse.get(r["state"])
        eq_out = ref["ratio_out"] / r["ratio_out"] if ref else math.nan
        eq_par = ref["ratio_param"] / r["ratio_param"] if ref else math.nan
        r["alpha_eq_out"], r["alpha_eq_param"] = eq_out, eq_par
        sd = f" ± {r['ratio_param_sd']:.2g}" if r["n"] > 1 else ""
        lines.append(
            f"| {r['state']} | {r['loss']} | {r['n']} | {r['td_out']:.3g} | {r['cons_out']:.3g} | "
            f"{r['ratio_out']:.3g} | {r['td_param']:.3g} | {r['cons_param']:.3g} | "
            f"{r['ratio_param']:.3g}{sd} | {eq_out:.3g} | {eq_par:.3g} | "
            f"{r['ratio_value_param']:.3g} | {r['cos_param']:.2f} | {r['td_bin']:.3g} | "
            f"{r['cons_bin']:.3g} | {r['q_data']:.3f} | {r['target']:.3f} | {r['q_unseen']:.3f} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--dataset", required=True, help="an RLDS dataset written by `qtransformer collect`")
    add("--losses", default=",".join(LOSSES), help="comma-separated, from " + ", ".join(LOSSES))
    add("--batches", type=int, default=8, help="measurement batches (the same for every loss)")
    add("--train-steps", type=int, default=500, help="Adam steps for the trainedN state; 0: none")
    add("--alphas", default="1", help="alphas of the short training runs (comma-separated)")
    add("--learning-rate", type=float, default=1e-3)
    add("--seed", type=int, default=0)
    add("--fresh-seeds", type=int, default=1, help="fresh networks per loss (seeds from --seed)")
    add("--checkpoint", action="append", default=[], metavar="LOSS=WORKDIR",
        help="also measure a trained workdir's latest checkpoint (repeatable)")  # fmt: skip
    add("--out", help="write the rows as JSON here")
    args = parser.parse_args()

    base = TrainConfig(learning_rate=args.learning_rate, seed=args.seed)
    eval_ds, meta = make_transition_dataset(args.dataset, base.data, seed=args.seed + 1000)
    batches = list(eval_ds.take(args.batches))
    results = []

    def record(state, loss, agent, **extra):
        row = {"state": state, "loss": loss, **extra, **measure(agent, batches)}
        results.append(row)
        print(json.dumps(row), flush=True)

    stats = state_statistics(args.dataset, base)  # the same data config for every loss
    for loss in filter(None, args.losses.split(",")):
        config, _ = value_range.resolve(base.replace(loss=loss), args.dataset)
        for seed in range(args.seed, args.seed + args.fresh_seeds):
            record("fresh", loss, fresh_agent(config.replace(seed=seed), meta, stats), seed=seed)
        for alpha in map(float, args.alphas.split(",") if args.train_steps else []):
            agent = fresh_agent(config.replace(alpha=alpha), meta, stats)
            last = train(agent, args.dataset, agent._config, args.train_steps)  # noqa: SLF001
            state = f"trained{args.train_steps}" + ("" if alpha == 1 else f"_a{alpha:g}")
            record(state, loss, agent, alpha=alpha, train_loss=last)
    for spec in args.checkpoint:
        loss, workdir = spec.split("=", 1)
        agent, config, step = restore(workdir, meta)
        if config.loss != loss:
            parser.error(f"{workdir} was trained with loss {config.loss}, not {loss}")
        record("ckpt", loss, agent, workdir=workdir, step=step, alpha=config.alpha)
    rows = aggregate(results)
    print(table(rows))
    if args.out:
        out = {"argv": sys.argv[1:], "rows": results, "table": rows}
        Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
