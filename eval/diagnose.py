"""Diagnose a trained run on held-out episodes: Q calibration, unseen bins, entropy, agreement.

    qtransformer diagnose --workdir runs/hl_gauss --dataset data/pick_place_heldout \\
        --train-dataset data/pick_place --out runs/hl_gauss/diagnostics.json

Rebuilds the agent from WORKDIR/config.json and the training dataset's specs, restores the
latest checkpoint in WORKDIR/train/checkpoints, and on the last --episodes episodes of
--dataset computes (formulas in `qtransformer.tools.diagnostics`):

- Q of the data's actions (each dimension's position, and the last one, which scores the
  whole action) against the Monte-Carlo return G_t: bias, mean abs error, Spearman rank
  correlation, and mean Q vs mean G in 10 equal bins of G on [v_min, v_max];
- mean Q (data action and greedy action, last dimension) on successful vs failed episodes,
  at the first step and over all steps;
- the rate at which a greedy bin was never taken by the k nearest training states
  (standardised state space; --k);
- the entropy (nats) of the value distribution at the data's and the greedy action
  (classification losses only; its maximum is log(value_bins));
- the agreement of greedy and data bins per dimension (exact, within one bin), on all,
  successful and failed episodes.

BC runs (no Q-values) get the agreement and unseen-bin metrics only. The nearest-neighbour
states come from --train-dataset, the dataset the run was trained on (default: the one
`train` recorded in WORKDIR/dataset_spec.json, else --dataset without the diagnosed
episodes); the instruction vocabulary from WORKDIR/dataset_spec.json (else that dataset's).
The diagnosed episodes are held out only if the run was not trained on them. The report
(JSON, atomic) also goes to TensorBoard as diagnostics/... scalars in WORKDIR/diagnostics
at the checkpoint's step.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from qtransformer.commands import quiet

_DISTRIBUTIONAL = ("hl_gauss", "two_hot", "c51")  # losses with a value distribution


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from qtransformer.commands import flags

    add = parser.add_argument
    add("--workdir", required=True, help="a `qtransformer train` workdir")
    add("--dataset", required=True, help="RLDS dataset with the episodes to diagnose")
    add("--episodes", type=flags.nonneg_int, default=50,
        help="diagnose its last N episodes (0 = all)")  # fmt: skip
    add(
        "--train-dataset",
        help="the dataset the run was trained on, for the neighbour states (default: the one "
        "in WORKDIR/dataset_spec.json, else --dataset without the diagnosed episodes)",
    )
    add("--k", type=flags.positive_int, default=10, help="nearest training states")
    add("--out", metavar="FILE.json", help="where to write the JSON report")
    add("--batch-size", type=flags.positive_int, default=256, help="steps per network call")


def run(args: argparse.Namespace) -> int:
    from qtransformer.commands import flags
    from qtransformer.eval.metrics import write_report

    flags.check_disjoint(
        {"--out": args.out},
        {"--dataset": args.dataset, "--train-dataset": args.train_dataset},
    )
    report = diagnose(
        args.workdir, args.dataset, episodes=args.episodes, train_dataset=args.train_dataset,
        k=args.k, batch_size=args.batch_size,
    )  # fmt: skip
    print(format_report(report))
    if args.out:
        write_report(report, args.out)
        print(f"report: {args.out}")
    print(f"tensorboard: {Path(args.workdir) / 'diagnostics'}")
    return 0


def diagnose(workdir, dataset, *, episodes=50, train_dataset=None, k=10, batch_size=256) -> dict:
    """Restore the run in `workdir`, compute the report on `dataset`'s last `episodes`
    episodes (0 = all), write it as TensorBoard scalars to WORKDIR/diagnostics; return it."""
    from qtransformer.training.config import TrainConfig

    workdir = Path(workdir)
    config_path = workdir / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path} not found: --workdir must be a `train` workdir")
    config = TrainConfig.from_file(config_path)
    _check_loss(config, f"{config_path}: ")
    recorded = recorded_spec(workdir).get("dataset")
    if train_dataset is None and recorded and Path(recorded).is_dir():
        train_dataset = recorded  # the dataset `train` recorded in WORKDIR/dataset_spec.json
    probe = HeldOutProbe(dataset, config, episodes=episodes, train_dataset=train_dataset, k=k)
    agent, step = restore_agent(workdir, probe.train_meta, config)
    report = probe.report(agent, step, batch_size)
    report["workdir"] = str(workdir)
    probe.write_scalars(report, workdir / "diagnostics", step)
    return report


def _check_loss(config, where: str = "") -> None:
    if config.loss not in (*_DISTRIBUTIONAL, "mse", "mse_linear", "bc"):
        raise ValueError(f"{where}diagnose supports Q-Transformer and BC runs, not {config.loss}")


class HeldOutProbe:
    """The held-out steps and their nearest training states, loaded once; `report(agent,
    step)` runs the network on them. `qtransformer diagnose` uses it on a restored run,
    `train --diagnose-dataset` on the live agent every --diagnose-every steps.
    """

    def __init__(self, dataset, config, *, episodes=50, train_dataset=None, k=10):
        from qtransformer.datasets import read_meta
        from qtransformer.model.tokenizer import ActionTokenizer
        from qtransformer.tools import diagnostics

        _check_loss(config)
        meta = read_meta(dataset)
        total = meta.num_episodes
        count = total if episodes == 0 else min(episodes, total)
        same = train_dataset is None or Path(train_dataset).resolve() == Path(dataset).resolve()
        train_meta = meta if train_dataset is None else read_meta(train_dataset)
        if not (
            len(meta.action_low) == len(train_meta.action_low)
            and (meta.action_low == train_meta.action_low).all()
            and (meta.action_high == train_meta.action_high).all()
        ):
            raise ValueError(f"{dataset} and {train_meta.path} have different action bounds")
        reference = (0, total - count) if same else (0, train_meta.num_episodes)
        if reference[1] == 0:
            raise ValueError(
                f"every episode of {dataset} is diagnosed, none is left for the nearest "
                "training states: pass --train-dataset or a smaller --episodes"
            )
        tokenizer = ActionTokenizer(meta.action_low, meta.action_high, config.data.action_bins)
        self.config, self.train_meta = config, train_meta
        gamma, history = config.data.gamma, config.data.history
        self.held = load_steps(dataset, total - count, total, gamma, tokenizer, history=history)
        ref = load_steps(train_meta.path, *reference, gamma, tokenizer, False)
        neighbours = diagnostics.nearest_neighbours(self.held["state"], ref["state"], k)
        self.neighbour_bins = ref["bins"][neighbours]  # [N, k, D]: fixed, the network aside
        self.info = {"dataset": str(dataset), "train_dataset": str(train_meta.path),
                     "diagnosed_episodes": [total - count, total]}  # fmt: skip

    def report(self, agent, step: int, batch_size: int = 256, config=None) -> dict:
        """The diagnostics report (qtransformer.tools.diagnostics.build_report) of `agent`.

        config: the agent's TrainConfig when it differs from the probe's (train() passes the
        one with the value range resolved from the data); default: the probe's.
        """
        from qtransformer.tools import diagnostics

        config, held = config or self.config, self.held
        arrays = network_outputs(agent, config, held, batch_size)
        arrays.update(
            mc_return=held["mc_return"], success=held["success"], first=held["first"],
            data_bins=held["bins"], neighbour_bins=self.neighbour_bins,
        )  # fmt: skip
        report = diagnostics.build_report(arrays, (config.model.v_min, config.model.v_max))
        report.update(self.info, checkpoint_step=int(step), loss=config.loss)
        if config.loss in _DISTRIBUTIONAL:
            report["entropy"]["max"] = math.log(config.model.value_bins)
        return report

    @staticmethod
    def write_scalars(report: dict, logdir, step: int) -> None:
        """Every number of `report` as a TensorBoard scalar diagnostics/... at `step`."""
        import tensorflow as tf

        from qtransformer.tools import diagnostics

        writer = tf.summary.create_file_writer(str(logdir))
        with writer.as_default():
            for name, value in diagnostics.flatten_scalars(report).items():
                if name != "diagnostics/checkpoint_step":
                    tf.summary.scalar(name, value, step=int(step))
        writer.flush()


def recorded_spec(workdir: Path) -> dict:
    """WORKDIR/dataset_spec.json as `train` wrote it (dataset, vocabulary, ...), or {}."""
    import json

    try:
        return json.loads((Path(workdir) / "dataset_spec.json").read_text())
    except (OSError, ValueError):
        return {}


def restore_agent(workdir: Path, meta, config):
    """(QTransformerAgent with the latest checkpoint of WORKDIR/train restored, its step).

    The agent is built as `train` builds it (specs from the training dataset's `meta`,
    the instruction vocabulary recorded in WORKDIR/dataset_spec.json, else the words of
    `meta`'s instructions); the state statistics come from the checkpoint.
    """
    import tensorflow as tf

    from qtransformer.model.agent import QTransformerAgent
    from qtransformer.model.network import word_vocabulary
    from qtransformer.training.export import policy_specs

    quiet.hide_xla_banner()  # the policy's greedy decoder is XLA-compiled
    ckpt_dir = workdir / "train" / "checkpoints"
    latest = tf.train.latest_checkpoint(str(ckpt_dir))
    if latest is None:
        raise FileNotFoundError(f"no checkpoint in {ckpt_dir}: train the run first")
    time_step_spec, action_spec = policy_specs(meta)
    train_step = tf.Variable(0, dtype=tf.int64, trainable=False, name="train_step")
    agent = QTransformerAgent(
        time_step_spec, action_spec, config,
        recorded_spec(workdir).get("vocabulary") or word_vocabulary(meta.instructions),
        train_step_counter=train_step,
    )  # fmt: skip
    checkpoint = tf.train.Checkpoint(agent=agent, train_step=train_step)
    try:
        status = checkpoint.restore(latest).expect_partial()  # Adam's slots are not built
        status.assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.InvalidArgumentError) as e:
        raise ValueError(
            f"{latest} does not match the network built from {workdir / 'config.json'} and "
            f"{meta.path} (pass the run's training dataset as --train-dataset): "
            f"{str(e).splitlines()[0][:200]}"
        ) from e
    return agent, int(train_step.numpy())


def load_steps(
    dataset_dir, start: int, stop: int, gamma: float, tokenizer, observations=True, history=1
):
    """numpy arrays over the steps of episodes start..stop-1 (file order) of a dataset.

    Returns state [N, S], bins int [N, D] (the data's actions, tokenised), mc_return [N]
    (return-to-go with `gamma`), success [N] (episode_metadata/success), first [N]; with
    `observations` also instruction (bytes) [N] and image [N, H, W, 3] if the data has one.
    With `history` W > 1 the network's inputs are the training pipeline's windows
    (qtransformer/model/history.py): state_window [N, W, S] and image [N, W, H, W, 3]; state stays
    the current step's (the nearest-neighbour search reads it).
    """
    import numpy as np

    from qtransformer.datasets.rlds_io import load_dataset
    from qtransformer.training.data import episode_transitions

    episodes, _ = load_dataset(dataset_dir)
    parts = []
    for episode in episodes.skip(start).take(stop - start):
        steps = episode["steps"].batch(1_000_000).get_single_element()
        tr = episode_transitions(steps, 1, gamma, history if observations else 1)
        n = int(tr["action"].shape[0])
        state = tr["observation"]["state"].numpy()
        part = {
            "state": state[:, -1] if state.ndim == 3 else state,
            "bins": tokenizer.tokenize(tr["action"]).numpy(),
            "mc_return": tr["mc_return"].numpy(),
            "success": np.full(n, bool(episode["episode_metadata"]["success"].numpy())),
            "first": np.arange(n) == 0,
        }
        if observations:
            if state.ndim == 3:
                part["state_window"] = state
            part["instruction"] = tr["observation"]["instruction"].numpy()
            if "image" in tr["observation"]:
                part["image"] = tr["observation"]["image"].numpy()
        parts.append(part)
    if not parts:
        raise ValueError(f"{dataset_dir} has no episodes {start}..{stop - 1}")
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def network_outputs(agent, config, steps: dict, batch_size: int) -> dict:
    """Greedy bins and, for Q-learners, Q / entropy at the data's and the greedy bins.

    `steps` as `load_steps` returns them (windows when the run has observation history).
    Returns numpy arrays over N steps: greedy_bins [N, D]; q_data, q_greedy [N, D] (Q of the
    data's / greedy bins at each dimension's position, via the agent's own `q_values`, so
    MSE's sigmoid bound is applied); entropy_data, entropy_greedy [N, D] (classification).
    """
    import numpy as np
    import tensorflow as tf

    from qtransformer.model import targets
    from qtransformer.tools import diagnostics

    has_q = config.loss != "bc"
    distributional = config.loss in _DISTRIBUTIONAL
    keys = ["greedy_bins"] + (["q_data", "q_greedy"] if has_q else [])
    keys += ["entropy_data", "entropy_greedy"] if distributional else []
    out = {key: [] for key in keys}
    net = agent.q_network
    for start in range(0, len(steps["state"]), batch_size):
        part = slice(start, start + batch_size)
        obs = {key: tf.constant(steps[key][part]) for key in ("state", "instruction", "image")
               if key in steps}  # fmt: skip
        if "state_window" in steps:  # observation history: the network reads windows
            obs["state"] = tf.constant(steps["state_window"][part])
        data = tf.constant(steps["bins"][part], tf.int32)
        greedy = agent.policy.greedy_bins(obs)
        out["greedy_bins"].append(greedy.numpy())
        if not has_q:
            continue
        for name, bins in (("data", data), ("greedy", greedy)):
            outputs = net((obs, bins), training=False)[0]  # [B, D, A(, V)]
            out[f"q_{name}"].append(targets.taken(agent.q_values(outputs), bins).numpy())
            if distributional:
                logits = targets.taken(outputs, bins).numpy()  # [B, D, V]
                out[f"entropy_{name}"].append(diagnostics.entropy(logits))
    return {key: np.concatenate(parts) for key, parts in out.items()}


def format_report(report: dict) -> str:
    """A one-screen text table of the report's headline numbers."""

    def fmt(value) -> str:
        if value is None:
            return "-"
        if isinstance(value, list):
            return " ".join(fmt(v) for v in value)
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    eps = report["episodes"]
    lines = [
        f"diagnose {report['workdir']} ({report['loss']}, step {report['checkpoint_step']}) on "
        f"{report['dataset']}: {eps['all']} episodes ({eps['success']} successful), "
        f"{report['steps']} steps",
    ]
    rows = []
    if "q" in report:
        q = report["q"]
        last = q["last_dimension"]
        rows += [
            ("Q(data) - G, last dim: bias / mae", f"{fmt(last['bias'])} / {fmt(last['mae'])}"),
            ("Spearman(Q(data), G) per dim", fmt([r["spearman"] for r in q["per_dimension"]])),
            ("calibration error (ECE)", fmt(q["calibration"]["ece"])),
        ]
        for outcome in ("success", "failed"):
            row = q["by_outcome"][outcome]
            rows.append(
                (f"Q {outcome}: data first/all, greedy first/all",
                 fmt([row["q_data_first_step"], row["q_data_all_steps"],
                      row["q_greedy_first_step"], row["q_greedy_all_steps"]]))
            )  # fmt: skip
    if "entropy" in report:
        ent = report["entropy"]
        rows += [
            (f"entropy data / greedy (max {ent['max']:.2f})",
             f"{fmt(ent['data_action'])} / {fmt(ent['greedy_action'])}"),
        ]  # fmt: skip
    unseen = report["unseen_greedy_bin"]
    per_dim, any_dim = fmt(unseen["per_dimension"]), fmt(unseen["any_dimension"])
    rows.append((f"unseen greedy bin (k={unseen['k']}) per dim", f"{per_dim}  any {any_dim}"))
    for outcome in ("all", "success", "failed"):
        agree = report["agreement"][outcome]
        rows.append((f"greedy = data bin, {outcome}: exact | +-1",
                     f"{fmt(agree['exact'])} | {fmt(agree['within_1'])}"))  # fmt: skip
    width = max(len(name) for name, _ in rows)
    lines += [f"  {name:<{width}}  {value}" for name, value in rows]
    return "\n".join(lines)
