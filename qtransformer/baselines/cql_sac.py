"""CQL-SAC baseline: tf_agents' `CqlSacAgent` trained offline on our RLDS datasets.

The off-the-shelf offline RL a user of this stack would pick (Kumar et al. 2020, as in
`tf_agents/examples/cql_sac/kumar20`), trained on the same transitions as the Q-Transformer
(`qtransformer.training.data`, 1-step) and exported in the same layout, so `eval` and `experiment`
roll it out unchanged:

    WORKDIR/train/checkpoints/          Learner checkpoints (actor, 2 critics + targets, Adams)
    WORKDIR/train/events.out.tfevents*  TensorBoard: Losses/critic_loss, actor_loss, cql_loss,
                                        cql_alpha, sac_alpha, train/steps_per_s
    WORKDIR/cql_sac.json                hyperparameters of the run
    WORKDIR/state_stats.json            per-feature state mean/std (fixed at the first run)
    WORKDIR/policies/<step>/            greedy policy (PolicySaver) at every checkpoint
    WORKDIR/policy/                     the latest one

Hyperparameters: kumar20 `train_eval`'s defaults ("from the CQL paper"), except the width:
actor MLP (128, 128) with a tanh-squashed normal head, critic joint MLP (128, 128, 128) (glorot
init), where kumar20's 256 units cost 3x the CPU per step (`measure_speed`); batch 256; critic
and SAC-alpha learning rate 3e-4, actor 3e-5 (the 1:10 ratio is kept when `learning_rate` is
tuned); 10 CQL samples; target tau 5e-3 every step; no critic entropy term; reward scale and
softmax temperature 1; no BC warm-up (the gin configs' 10k BC steps exceed our whole budget).
As in the kumar20 MuJoCo configs the CQL weight `cql_alpha` is fixed (no Lagrange tuning): the
conservative weight the benchmark tunes for every Q-learner. The discount is the project's
(`DataConfig().gamma`), as for the Q-Transformer.

Observations: the networks see the standardised `state` vector only (std floored at 0.01, as
the Q-Transformer's encoder); the exported policy (`StateObservationPolicy`) accepts our
observation dict {state float32[S], instruction string} and ignores the instruction.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
from tf_agents.policies import tf_policy
from tf_agents.trajectories import policy_step as policy_step_lib
from tf_agents.trajectories import time_step as ts
from tf_agents.trajectories import trajectory

from qtransformer.commands import output_lock

ACTOR_LAYERS = (128, 128)
CRITIC_LAYERS = (128, 128, 128)
NUM_CQL_SAMPLES = 10
TARGET_UPDATE_TAU = 5e-3
ACTOR_LR_RATIO = 0.1  # kumar20: actor 3e-5 against critic 3e-4


class StateObservationPolicy(tf_policy.TFPolicy):
    """Runs a policy over standardised states from our observation dict.

    time_step.observation: {"state": float32[B, S], "instruction": string[B], ...}; the inner
    policy sees (state - mean) / std, float32[B, S]. Mean and std are variables, so the
    PolicySaver export carries them.
    """

    def __init__(self, policy, time_step_spec, mean, std):
        super().__init__(time_step_spec, policy.action_spec, policy.policy_state_spec,
                         policy.info_spec, clip=False)  # fmt: skip
        self._policy = policy
        self._mean = tf.Variable(np.asarray(mean, np.float32), trainable=False, name="state_mean")
        self._std = tf.Variable(np.asarray(std, np.float32), trainable=False, name="state_std")

    def _inner(self, time_step):
        state = (tf.cast(time_step.observation["state"], tf.float32) - self._mean) / self._std
        return time_step._replace(observation=state)

    def _variables(self):
        return self._policy.variables() + [self._mean, self._std]

    def _distribution(self, time_step, policy_state):
        return self._policy.distribution(self._inner(time_step), policy_state)

    def _action(self, time_step, policy_state, seed):
        return self._policy.action(self._inner(time_step), policy_state, seed=seed)


def state_statistics(dataset_dir, gamma: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature (mean, std) float32[S] of all transitions' states, std floored at 0.01."""
    from qtransformer.datasets.rlds_io import load_dataset
    from qtransformer.training.data import transitions_from_episodes

    episodes, _ = load_dataset(dataset_dir)
    states = transitions_from_episodes(episodes, 1, gamma).map(lambda t: t["observation"]["state"])
    values = np.concatenate([b.numpy() for b in states.batch(4096)], axis=0).astype(np.float64)
    std = np.maximum(values.std(axis=0), 0.01)
    return values.mean(axis=0).astype(np.float32), std.astype(np.float32)


def to_transition(batch: dict, mean, std) -> trajectory.Transition:
    """A `qtransformer.training.data` batch (n_step=1) -> a tf_agents Transition over standardised
    states.

    time_step.observation / next_time_step.observation: float32[B, S]; action float32[B, D];
    next_time_step.reward = r_t, next_time_step.discount = 0 at a terminal, else 1 (the
    agent multiplies by its gamma).
    """
    size = tf.shape(batch["reward"])[0]
    terminal = batch["is_terminal"]
    first = ts.TimeStep(
        step_type=tf.fill([size], ts.StepType.MID),
        reward=tf.zeros([size]),
        discount=tf.ones([size]),
        observation=(batch["observation"]["state"] - mean) / std,
    )
    following = ts.TimeStep(
        step_type=tf.where(terminal, ts.StepType.LAST, ts.StepType.MID),
        reward=batch["reward"],
        discount=1.0 - tf.cast(terminal, tf.float32),
        observation=(batch["next_observation"]["state"] - mean) / std,
    )
    return trajectory.Transition(first, policy_step_lib.PolicyStep(batch["action"], (), ()),
                                 following)  # fmt: skip


def make_agent(state_dim, action_spec, *, learning_rate, cql_alpha, gamma, seed, train_step,
               width: int | None = None):  # fmt: skip
    """The kumar20 CqlSacAgent over observation float32[state_dim] (constants above).

    width: hidden units of every layer instead of ACTOR_LAYERS / CRITIC_LAYERS (for timing).
    """
    from tf_agents.agents.cql import cql_sac_agent
    from tf_agents.agents.ddpg import critic_network
    from tf_agents.agents.sac import tanh_normal_projection_network
    from tf_agents.networks import actor_distribution_network

    observation_spec = tf.TensorSpec([state_dim], tf.float32, name="state")
    actor_net = actor_distribution_network.ActorDistributionNetwork(
        observation_spec,
        action_spec,
        fc_layer_params=(width,) * 2 if width else ACTOR_LAYERS,
        continuous_projection_net=tanh_normal_projection_network.TanhNormalProjectionNetwork,
    )
    critic_net = critic_network.CriticNetwork(
        (observation_spec, action_spec),
        joint_fc_layer_params=(width,) * 3 if width else CRITIC_LAYERS,
        kernel_initializer="glorot_uniform",
        last_kernel_initializer="glorot_uniform",
    )
    adam = tf.keras.optimizers.Adam
    agent = cql_sac_agent.CqlSacAgent(
        ts.time_step_spec(observation_spec),
        action_spec,
        actor_network=actor_net,
        critic_network=critic_net,
        actor_optimizer=adam(learning_rate=learning_rate * ACTOR_LR_RATIO),
        critic_optimizer=adam(learning_rate=learning_rate),
        alpha_optimizer=adam(learning_rate=learning_rate),
        cql_alpha=cql_alpha,
        num_cql_samples=NUM_CQL_SAMPLES,
        include_critic_entropy_term=False,
        use_lagrange_cql_alpha=False,
        target_update_tau=TARGET_UPDATE_TAU,
        target_update_period=1,
        random_seed=seed,
        td_errors_loss_fn=tf.math.squared_difference,
        gamma=gamma,
        reward_scale_factor=1.0,
        gradient_clipping=None,
        train_step_counter=train_step,
    )
    agent.initialize()
    return agent


def _write_json(path: Path, data: dict) -> None:
    output_lock.write_text_atomic(path, json.dumps(data, indent=2) + "\n")


def _load_or_save_stats(workdir: Path, dataset, gamma: float):
    """The first run's state statistics, so a resumed run standardises identically."""
    path = workdir / "state_stats.json"
    if path.exists():
        saved = json.loads(path.read_text())
        return np.asarray(saved["mean"], np.float32), np.asarray(saved["std"], np.float32)
    mean, std = state_statistics(dataset, gamma)
    _write_json(path, {"mean": mean.tolist(), "std": std.tolist()})
    return mean, std


def train_cql_sac(
    dataset: Path,
    workdir: Path,
    *,
    steps: int,
    seed: int,
    checkpoint_every: int,
    learning_rate: float = 3e-4,
    cql_alpha: float = 5.0,
    batch_size: int = 256,
    progress: bool = True,
) -> None:
    """Train (or resume) CQL-SAC to `steps` gradient steps; layout in the module docstring.

    Raises FloatingPointError if a loss becomes NaN/Inf (the last checkpoint stays).
    """
    from tf_agents.policies import greedy_policy
    from tf_agents.train import learner
    from tf_agents.train.utils import train_utils
    from tqdm import tqdm

    from qtransformer.training.config import DataConfig
    from qtransformer.training.data import make_transition_dataset
    from qtransformer.training.export import export_policy, policy_saver, policy_specs

    if steps < 1 or checkpoint_every < 1:
        raise ValueError(f"steps and checkpoint_every must be >= 1: {steps}, {checkpoint_every}")
    workdir = Path(workdir)
    tf.random.set_seed(seed)
    np.random.seed(seed)
    data_config = dataclasses.replace(DataConfig(), n_step=1, batch_size=batch_size)
    gamma = data_config.gamma
    batches, meta = make_transition_dataset(dataset, data_config, seed=seed)
    workdir.mkdir(parents=True, exist_ok=True)  # after the dataset opened: no dir for a typo
    mean, std = _load_or_save_stats(workdir, dataset, gamma)
    _write_json(workdir / "cql_sac.json", dict(
        method="cql_sac", learning_rate=learning_rate, cql_alpha=cql_alpha, seed=seed, steps=steps,
        batch_size=batch_size, gamma=gamma, actor_layers=ACTOR_LAYERS, critic_layers=CRITIC_LAYERS,
        num_cql_samples=NUM_CQL_SAMPLES, actor_lr_ratio=ACTOR_LR_RATIO))  # fmt: skip
    time_step_spec, action_spec = policy_specs(meta)
    train_step = train_utils.create_train_step()
    agent = make_agent(meta.state_dim, action_spec, learning_rate=learning_rate, seed=seed,
                       cql_alpha=cql_alpha, gamma=gamma, train_step=train_step)  # fmt: skip
    runner = learner.Learner(
        str(workdir),
        train_step,
        agent,
        experience_dataset_fn=lambda: batches.map(lambda b: (to_transition(b, mean, std), ())),
        checkpoint_interval=-1,  # saved below, at the export steps
        summary_interval=max(1, min(100, checkpoint_every)),
        max_checkpoints_to_keep=3,
    )
    greedy = greedy_policy.GreedyPolicy(agent.policy)  # the actor's mode, not a sample
    saver = policy_saver(StateObservationPolicy(greedy, time_step_spec, mean, std), train_step)
    checkpointer = runner._checkpointer  # noqa: SLF001 - the Learner's own, restored above
    step = int(train_step.numpy())
    bar = tqdm(total=steps, initial=min(step, steps), disable=not progress, desc="cql_sac")
    while step < steps:
        chunk = min(checkpoint_every - step % checkpoint_every, steps - step, 100)
        start = time.perf_counter()
        try:
            loss = float(runner.run(iterations=chunk).loss)
        except tf.errors.InvalidArgumentError as e:  # the agent's check_numerics
            bar.close()
            raise FloatingPointError(
                f"training stopped: {e.message.splitlines()[0]} within steps {step}.."
                f"{step + chunk}; the last checkpoint in {workdir / 'train'} is kept"
            ) from e
        rate = chunk / (time.perf_counter() - start)
        step = int(train_step.numpy())
        bar.update(chunk)
        bar.set_postfix(loss=f"{loss:.4f}", steps_per_s=f"{rate:.1f}")
        with runner.train_summary_writer.as_default():
            tf.summary.scalar("train/steps_per_s", rate, step=step)
        if step % checkpoint_every == 0 or step >= steps:
            checkpointer.save(train_step)
            export_policy(saver, workdir, step)
    bar.close()
    if not (workdir / "policy").exists():  # resumed a finished run: make sure it is exported
        export_policy(saver, workdir, step)
    runner.train_summary_writer.flush()


def measure_speed(dataset, *, steps: int = 300, batch_size: int = 256, width: int | None = None):
    """Steady-state train steps/s and process CPU ms per step (after 100 warm-up steps).

    CPU ms per step stays meaningful on a shared machine: 2000 / it bounds the steps/s of an
    idle 2-core one.
    `python -c "from qtransformer.baselines.cql_sac import *; print(measure_speed(DIR))"`
    """
    import tempfile

    from tf_agents.train import learner
    from tf_agents.train.utils import train_utils

    from qtransformer.training.config import DataConfig
    from qtransformer.training.data import make_transition_dataset
    from qtransformer.training.export import policy_specs

    config = dataclasses.replace(DataConfig(), n_step=1, batch_size=batch_size)
    batches, meta = make_transition_dataset(dataset, config)
    mean, std = state_statistics(dataset, config.gamma)
    step = train_utils.create_train_step()
    agent = make_agent(meta.state_dim, policy_specs(meta)[1], learning_rate=3e-4, cql_alpha=5.0,
                       gamma=config.gamma, seed=0, train_step=step, width=width)  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        fn = lambda: batches.map(lambda b: (to_transition(b, mean, std), ()))  # noqa: E731
        runner = learner.Learner(tmp, step, agent, experience_dataset_fn=fn,
                                 checkpoint_interval=-1, summary_interval=100)  # fmt: skip
        runner.run(iterations=100)
        wall, cpu = time.perf_counter(), time.process_time()
        runner.run(iterations=steps)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"steps_per_s": steps / wall, "cpu_ms_per_step": 1000 * cpu / steps,
            "width": width or ACTOR_LAYERS[0], "batch_size": batch_size}  # fmt: skip
