"""Offline training of the Q-Transformer with the tf_agents Learner.

    qtransformer train --dataset data/pick_place --workdir runs/hl_gauss --steps 4000

Reads RLDS episodes through `qtransformer.training.data`, trains with `tf_agents.train.Learner`
(train step compiled with tf.function; `--xla` adds jit_compile; the exported greedy
decoder is XLA-compiled unless `--no-xla-decoder`), checkpoints every
`checkpoint_every` steps and resumes from WORKDIR when run again. Workdir layout:

    WORKDIR/config.json                 the TrainConfig (a rerun must match its model shape)
    WORKDIR/train/checkpoints/          Learner checkpoints (weights, target net, Adam, step)
    WORKDIR/train/events.out.tfevents*  TensorBoard: train/loss, td_loss, conservative, mean_q,
                                        td_error, grad_norm, steps_per_s, loss_global (the
                                        mean over all replicas; train/loss is replica 0's), ...
    WORKDIR/eval/events.out.tfevents*   TensorBoard: eval/<key> from in-training evaluation
    WORKDIR/diagnostics/events.out...   TensorBoard: diagnostics/... on held-out episodes
                                        (--diagnose-dataset; eval/diagnose.py)
    WORKDIR/policy/                     latest greedy policy (PolicySaver SavedModel)
    WORKDIR/policies/<step>/            the policy at each checkpoint
"""

from __future__ import annotations

import argparse
import math
import time

from qtransformer.commands import flags, output_lock, quiet
from qtransformer.training import cluster, value_range
from qtransformer.training.config import CONSERVATIVE_FORMS, LOSSES, TrainConfig
from qtransformer.training.export import export_policy, policy_saver, policy_specs
from qtransformer.training.resume import check_resume, check_workdir_config
from qtransformer.training.strategy import make_strategy


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, help="RLDS dataset directory")
    parser.add_argument("--workdir", required=True, help="checkpoints, summaries, policy")
    parser.add_argument(
        "--config", help="TrainConfig JSON file; flags override it (default: TrainConfig defaults)"
    )
    add = parser.add_argument
    D = TrainConfig()  # noqa: N806 - the defaults shown in the help
    add("--loss", choices=LOSSES, help=f"value loss, or bc (default: {D.loss})")
    add("--steps", type=flags.positive_int, help=f"total gradient steps (default: {D.steps})")
    add(
        "--batch-size",
        type=flags.positive_int,
        help=f"transitions per batch (default: {D.data.batch_size})",
    )
    add(
        "--action-bins",
        type=flags.bins,
        help=f"bins per action dimension (default: {D.data.action_bins})",
    )
    add(
        "--value-bins",
        type=flags.bins,
        help=f"bins of the value distribution (default: {D.model.value_bins})",
    )
    add(
        "--embed-dim",
        type=flags.positive_int,
        help=f"transformer width (default: {D.model.embed_dim})",
    )
    add(
        "--layers",
        type=flags.positive_int,
        help=f"transformer blocks (default: {D.model.num_layers})",
    )
    add(
        "--heads",
        type=flags.positive_int,
        help=f"attention heads; must divide --embed-dim (default: {D.model.num_heads})",
    )
    add("--head", choices=("factorised", "full"), help=f"Q head (default: {D.model.head})")
    add(
        "--image-shift",
        type=flags.nonneg_int,
        help="random-shift augmentation of images, pixels (0 = off; default: 0)",
    )
    add(
        "--alpha",
        type=flags.nonneg_float,
        help=f"weight of the conservative regulariser (default: {D.alpha})",
    )
    add(
        "--conservative",
        choices=CONSERVATIVE_FORMS,
        help="form of the conservative regulariser for classification losses: cross-entropy "
        f"towards v_min's distribution, or squared error of Q (default: {D.conservative})",
    )
    add(
        "--grad-clip",
        type=flags.nonneg_float,
        help=f"global-norm gradient clipping, 0 = off (default: {D.grad_clip})",
    )
    add(
        "--dropout",
        type=flags.unit_interval_closed_open,
        help=f"dropout inside the transformer (default: {D.model.dropout})",
    )
    add(
        "--conservative-sigma",
        type=flags.nonneg_float,
        help="Q-learners: push the data's neighbouring action bins down less, weight 1 - "
        f"exp(-offset^2 / (2 s^2)), 0 = all alike (default: {D.conservative_sigma})",
    )
    add(
        "--td-sigma",
        type=flags.nonneg_float,
        help="Q-learners: also train the data's neighbouring action bins towards the TD "
        f"target, weight exp(-offset^2 / (2 s^2)), 0 = the data's bin alone (default: "
        f"{D.td_sigma})",
    )
    add(
        "--action-sigma",
        type=flags.nonneg_float,
        help="bc only: label the ordered action bins with a Gaussian of this width in bins, "
        f"0 = one-hot (default: {D.bc_action_sigma})",
    )
    add(
        "--success-only",
        action="store_true",
        help="train on successful episodes only (with --loss bc: the bc_filtered baseline)",
    )
    add(
        "--n-step",
        type=flags.positive_int,
        help=f"rewards summed before bootstrapping (default: {D.data.n_step})",
    )
    add(
        "--history",
        type=flags.positive_int,
        metavar="W",
        help="observations per decision: the last W steps of the episode, padded at its "
        f"start with the first (the Q-Transformer's window; default: {D.data.history})",
    )
    add(
        "--gamma",
        type=flags.unit_interval_open_closed,
        help=f"discount per step, in (0, 1] (default: {D.data.gamma})",
    )
    add(
        "--v-min",
        type=flags.finite_float,
        help="lower end of the value range (default: from the dataset)",
    )
    add(
        "--v-max",
        type=flags.finite_float,
        help="upper end of the value range (default: from the dataset)",
    )
    add("--lr", type=flags.positive_float, help=f"Adam learning rate (default: {D.learning_rate})")
    add("--seed", type=flags.seed, help=f"initialisation and shuffling seed (default: {D.seed})")
    add("--no-mc-lower-bound", action="store_true", help="do not clip targets by the MC return")
    add(
        "--checkpoint-every",
        type=flags.positive_int,
        help=f"steps between checkpoints and exports (default: {D.checkpoint_every})",
    )
    add(
        "--strategy",
        choices=("default", "mirrored", "multi_worker", "tpu"),
        help=f"tf.distribute strategy (default: {D.strategy})",
    )
    add(
        "--xla",
        action="store_true",
        help="XLA-compile the train step (jit_compile; slower on CPU in `qtransformer bench`)",
    )
    add(
        "--no-xla-decoder",
        action="store_true",
        help="do not XLA-compile the greedy decoder of the exported policy (compiled by "
        "default: faster, but each new batch size compiles on its first call)",
    )
    add(
        "--mixed-precision",
        action="store_true",
        help="bfloat16 compute, float32 losses (for GPUs/TPUs; slower on CPU)",
    )
    add(
        "--eval-every",
        type=flags.nonneg_int,
        help="evaluate in the sim every K steps (0 = never; default: 0)",
    )
    add(
        "--eval-episodes",
        type=flags.positive_int,
        help=f"episodes per in-training evaluation (default: {D.eval_episodes})",
    )
    add("--eval-task", help="sim task for evaluation (default: the dataset's first task)")
    add(
        "--diagnose-dataset",
        help="RLDS dataset of held-out episodes: Q calibration, unseen bins, entropy and "
        "agreement on its last --diagnose-episodes go to TensorBoard (WORKDIR/diagnostics)",
    )
    add(
        "--diagnose-every",
        type=flags.positive_int,
        help="steps between diagnostics (default: --checkpoint-every)",
    )
    add(
        "--diagnose-episodes",
        type=flags.positive_int,
        default=20,
        help="held-out episodes diagnosed (default: 20)",
    )
    add("--no-progress", action="store_true", help="no progress bar")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """TrainConfig from --config (or defaults) with the explicitly given flags on top."""
    config = TrainConfig.from_file(args.config) if args.config else TrainConfig()
    loss = args.loss or config.loss
    if getattr(args, "action_sigma", None) is not None and loss != "bc":
        raise ValueError(f"--action-sigma applies to --loss bc only; the loss is {loss!r}")
    if getattr(args, "conservative_sigma", None) is not None and loss == "bc":
        raise ValueError("--conservative-sigma applies to the Q-learners; bc has no regulariser")
    if getattr(args, "td_sigma", None) is not None and loss == "bc":
        raise ValueError("--td-sigma applies to the Q-learners; bc has no TD term")
    return config.replace(
        loss=args.loss, steps=args.steps, batch_size=args.batch_size,
        action_bins=args.action_bins, value_bins=args.value_bins, embed_dim=args.embed_dim,
        num_layers=args.layers, num_heads=args.heads, head=args.head, alpha=args.alpha,
        conservative=args.conservative,
        n_step=args.n_step, gamma=args.gamma, learning_rate=args.lr, seed=args.seed,
        mc_lower_bound=False if args.no_mc_lower_bound else None,
        checkpoint_every=args.checkpoint_every, strategy=args.strategy,
        use_xla=True if args.xla else None, eval_every=args.eval_every,
        xla_decoder=False if getattr(args, "no_xla_decoder", False) else None,
        mixed_precision=True if getattr(args, "mixed_precision", False) else None,
        eval_episodes=args.eval_episodes, eval_task=args.eval_task,
        v_min=getattr(args, "v_min", None), v_max=getattr(args, "v_max", None),
        v_from_data=False if getattr(args, "v_min", None) is not None
        or getattr(args, "v_max", None) is not None else None,
        image_shift=getattr(args, "image_shift", None),
        grad_clip=args.grad_clip, dropout=args.dropout,
        bc_action_sigma=getattr(args, "action_sigma", None),
        conservative_sigma=getattr(args, "conservative_sigma", None),
        td_sigma=getattr(args, "td_sigma", None),
        success_only=True if args.success_only else None,
        history=getattr(args, "history", None),
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from qtransformer.commands.cli import CliError

    config = config_from_args(args)
    make_strategy(config.strategy)  # before any TF op: multi_worker configures the runtime
    eval_fn = None
    if config.eval_every:
        eval_fn = _sim_eval_fn(args.dataset, config)
    diagnose_fn = None
    if args.diagnose_dataset:
        diagnose_fn = _diagnose_fn(args, config)
    elif args.diagnose_every:
        raise CliError("--diagnose-every needs --diagnose-dataset (the held-out episodes)")
    try:
        metrics = train(
            args.dataset,
            args.workdir,
            config,
            progress=not args.no_progress,
            eval_fn=eval_fn,
            diagnose_fn=diagnose_fn,
            diagnose_every=args.diagnose_every or config.checkpoint_every,
            log=print,
        )
    except FloatingPointError as e:
        raise CliError(str(e)) from e
    shown = {k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()}
    print(f"trained to step {metrics['step']}: {shown}")
    return 0


def _sim_eval_fn(dataset_dir, config: TrainConfig):
    def eval_fn(policy, step):
        from qtransformer.datasets import read_meta
        from qtransformer.eval.rollout import evaluate

        task = config.eval_task or read_meta(dataset_dir).tasks[0]
        report = evaluate(policy, task, config.eval_episodes, seed=step, progress=False)
        # Outcome metrics only (not seed, batch size or wall time) go to TensorBoard.
        keys = ("success_rate", "mean_return", "mean_episode_length")
        return {k: float(report[k]) for k in keys}

    return eval_fn


def _diagnose_fn(args: argparse.Namespace, config: TrainConfig):
    """diagnose_fn(agent, step, config=) -> report on --diagnose-dataset's held-out episodes."""
    from qtransformer.eval.diagnose import HeldOutProbe

    flags.check_disjoint({"--workdir": args.workdir}, {"--diagnose-dataset": args.diagnose_dataset})
    probe = HeldOutProbe(
        args.diagnose_dataset, config, episodes=args.diagnose_episodes, train_dataset=args.dataset
    )
    return probe.report


@output_lock.releasing  # the workdir's lock, taken below, ends with the call
def train(
    dataset_dir,
    workdir,
    config: TrainConfig,
    *,
    progress=True,
    eval_fn=None,
    diagnose_fn=None,
    diagnose_every=0,
    log=None,
) -> dict:
    """Train (or resume) to `config.steps`; returns the final metrics.

    The value range comes from the dataset unless config.model.v_from_data is false
    (qtransformer/training/value_range.py); `log(line)` receives the line saying which range is
    used.

    eval_fn(policy, step) -> dict of scalars runs every `config.eval_every` steps (if > 0);
    its results go to TensorBoard as eval/<key> and into the returned dict.
    diagnose_fn(agent, step, config=config) -> report (eval/diagnose.py HeldOutProbe.report;
    config is the one with the resolved value range) runs every `diagnose_every` steps;
    its numbers go to TensorBoard as diagnostics/... in WORKDIR/diagnostics.
    Raises FloatingPointError if the loss becomes NaN/Inf; the last good checkpoint stays.
    Raises OutputInUse if another process trains in `workdir` (output_lock), and WriteFailed
    if a checkpoint or export cannot be written (disk full); a rerun resumes.
    """
    import numpy as np
    import tensorflow as tf
    from tf_agents.train import learner
    from tf_agents.train.utils import train_utils
    from tqdm import tqdm

    from qtransformer.eval.diagnose import HeldOutProbe
    from qtransformer.model.agent import QTransformerAgent
    from qtransformer.model.network import word_vocabulary
    from qtransformer.training.data import distributed_transition_dataset, make_transition_dataset

    # The strategy first: MultiWorkerMirroredStrategy must configure the runtime before any op.
    strategy = make_strategy(config.strategy)
    quiet.hide_xla_banner()  # XLA decoder (in-training eval), --xla train step
    workdir = cluster.write_dir(workdir, strategy)  # not the chief: a temporary folder
    if not cluster.is_chief(strategy):
        eval_fn = diagnose_fn = None  # the chief evaluates
    tf.random.set_seed(config.seed)
    np.random.seed(config.seed)
    dataset, meta = make_transition_dataset(dataset_dir, config.data, seed=config.seed)
    flags.check_disjoint({"--workdir": workdir}, {"--dataset": dataset_dir})
    if cluster.is_chief(strategy):  # one lock per job: the chief's; a 2nd writer prints nothing
        output_lock.acquire(workdir, temps=output_lock.WORKDIR_TEMPS, log=log)
    config, support_line = value_range.resolve(config, dataset_dir)
    if log and support_line:
        log(support_line)
    check_workdir_config(workdir, config)  # after the dataset opened: no workdir for a typo
    # Another dataset spec is refused; a corrupt newest checkpoint is skipped, with a note.
    note = check_resume(workdir, dataset_dir, meta, word_vocabulary(meta.instructions))
    if note:
        (log or print)(note)
    time_step_spec, action_spec = policy_specs(meta)
    state_stats = state_statistics(dataset_dir, config)
    with strategy.scope():
        train_step = train_utils.create_train_step()
        agent = QTransformerAgent(
            time_step_spec, action_spec, config, word_vocabulary(meta.instructions),
            state_stats=state_stats, train_step_counter=train_step,
        )  # fmt: skip
        # Adam's slots exist before the restore (the Learner would trace a train step for this).
        agent._optimizer.build(agent.q_network.trainable_variables)  # noqa: SLF001
        runner = learner.Learner(
            str(workdir),
            train_step,
            agent,
            experience_dataset_fn=None,  # per-worker input below, sharded by InputContext
            run_optimizer_variable_init=False,
            checkpoint_interval=-1,  # saved below, only after a finite loss
            summary_interval=config.summary_every,
            max_checkpoints_to_keep=3,
            strategy=strategy,
        )
    # Resume: every worker takes the chief's restored values (no shared file system needed).
    cluster.sync_from_chief(strategy, _checkpointed_variables(agent, train_step))
    experience = iter(
        distributed_transition_dataset(strategy, dataset_dir, config.data, seed=config.seed)
    )
    saver = policy_saver(agent.policy, train_step)
    checkpointer = runner._checkpointer  # noqa: SLF001 - the Learner's own, restored above
    eval_writer = tf.summary.create_file_writer(str(workdir / "eval"))
    ckpt_dir = workdir / "train" / "checkpoints"
    step = int(train_step.numpy())
    metrics: dict = {"step": step, "resumed_from": step}
    bar = tqdm(total=config.steps, initial=step, disable=not progress, desc="train", unit="step")
    while step < config.steps:
        chunk = _steps_to_next_event(step, config, diagnose_every if diagnose_fn else 0)
        start = time.perf_counter()
        # One iteration at a time: parallel loop iterations would interleave the collectives.
        loss_info = runner.run(iterations=chunk, iterator=experience, parallel_iterations=1)
        rate = chunk / (time.perf_counter() - start)
        values = {"loss": float(loss_info.loss)}
        values.update({k: float(v) for k, v in loss_info.extra.items()})
        if not all(math.isfinite(v) for v in values.values()):
            bar.close()
            raise FloatingPointError(
                f"training stopped: non-finite loss {values} within steps {step}..{step + chunk};"
                f" the last good checkpoint in {workdir / 'train' / 'checkpoints'} is kept"
                " (try a lower --lr or check the dataset for NaN/Inf)"
            )
        step = int(train_step.numpy())
        metrics.update(values, step=step, steps_per_s=rate)
        bar.update(chunk)
        bar.set_postfix(loss=f"{values['loss']:.4f}", steps_per_s=f"{rate:.1f}")
        with runner.train_summary_writer.as_default():
            tf.summary.scalar("train/steps_per_s", rate, step=step)
            tf.summary.scalar("train/loss_global", values["loss"], step=step)
        if step % config.checkpoint_every == 0 or step >= config.steps:
            with output_lock.writing(ckpt_dir, remove=lambda: ckpt_dir.glob("*_temp")):
                checkpointer.save(train_step)
            export_policy(saver, workdir, step)
        if eval_fn is not None and config.eval_every and step % config.eval_every == 0:
            results = eval_fn(agent.policy, step)
            with eval_writer.as_default():
                for key, value in results.items():
                    tf.summary.scalar(f"eval/{key}", value, step=step)
            metrics.update({f"eval/{k}": v for k, v in results.items()})
        if diagnose_fn is not None and step % diagnose_every == 0:
            report = diagnose_fn(agent, step, config=config)
            HeldOutProbe.write_scalars(report, workdir / "diagnostics", step)
    bar.close()
    if not (workdir / "policy").exists() or not (workdir / "policies" / str(step)).exists():
        export_policy(saver, workdir, step)  # resumed a finished run, or its export failed
    runner.train_summary_writer.flush()
    eval_writer.flush()
    return metrics


def state_statistics(dataset_dir, config: TrainConfig, batches: int = 20) -> tuple:
    """Per-feature (mean, std) [S] of observation states over the first `batches` batches
    (every step of each window, with observation history).

    Read from an uncached copy of the training pipeline: stopping early in a cached one
    discards its cache (with a tf.data warning). On resume the checkpointed values replace
    these (they are network variables).
    """
    import numpy as np
    import tensorflow as tf

    from qtransformer.training.data import make_transition_dataset

    dataset, meta = make_transition_dataset(dataset_dir, config.data, seed=config.seed, cache=False)
    try:
        states = np.concatenate(
            [b["observation"]["state"].numpy().reshape(-1, meta.state_dim)
             for b in dataset.take(batches)]
        )  # fmt: skip
    except tf.errors.OpError as e:  # a corrupt or truncated shard
        raise ValueError(f"cannot read dataset {dataset_dir}: {e.message.splitlines()[0]}") from e
    return states.mean(axis=0), states.std(axis=0)


def _checkpointed_variables(agent, train_step) -> list:
    """Every variable of the Learner checkpoint: networks, Adam (step and slots), counters."""
    optimizer = agent._optimizer  # noqa: SLF001
    return [*agent.variables, *optimizer.variables, train_step]


def _steps_to_next_event(step: int, config: TrainConfig, diagnose_every=0, cap=100) -> int:
    """Steps until the next checkpoint / summary / eval / diagnostics / end, at most `cap`."""
    periods = [config.checkpoint_every, config.summary_every, config.eval_every, diagnose_every]
    periods.append(cap)  # the progress bar moves at least every `cap` steps
    nearest = min(p - step % p for p in periods if p > 0)
    return max(1, min(nearest, config.steps - step))
