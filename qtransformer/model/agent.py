"""The Q-Transformer agent: per-dimension TD targets, conservative regulariser, Adam step.

Training batches are the dicts of `qtransformer.training.data.make_transition_dataset`
(observation, action_bins, reward, discount, next_observation, mc_return, ...); with
`DataConfig.history` W > 1 their observations are windows, and the network is built on the
windowed observation spec (qtransformer/model/history.py) while the policy takes one step at a time.
Loss for the classification losses (hl_gauss, two_hot, c51), per dimension i:

    L = mean_{b,i} CE(logits(s, a_<i)[a_i], p(y_i))                       (TD term)
      + alpha * mean_{b,i} mean_{a != a_i} CE(logits(s, a_<i)[a], p(v_min))  (conservative)

(`conservative="value"` replaces the last term's CE by 0.5 (Q(s, a_<i, a) - v_min)^2 on the
expected value, the form of the MSE losses; an ablation of the regulariser's form.)

with y from `qtransformer.model.targets` (target network, n-step, MC lower bound) and
p(y) the HL-Gauss / two-hot distribution of the scalar target. c51 uses the
projected target-network distribution instead of p(y) (see
`targets.c51_target_distribution`); where the MC bound lifts the target above its
mean, the two-hot of G_t replaces it. The value distribution lives on
`ModelConfig.value_support()`, [v_min, v_max] padded by a few bins so that v_min (the
conservative target) and v_max are representable.
The conservative CE is computed without the log-softmax of all [B, D, A, V] logits
(`targets.unseen_cross_entropy`), and Q only for the data's bins where nothing else needs it.

mse (the Q-Transformer paper's baseline): Q = v_min + (v_max - v_min) sigmoid(output),
loss 0.5 (Q - y)^2 and 0.5 (Q - v_min)^2 (conservative). mse_linear: the same with Q = output.

bc (behaviour cloning baseline): the same network built with one output per bin
([B, D, A], like mse) whose outputs are used as the logits of a softmax over the
bins of each dimension; loss = mean_{b,i} -log softmax(logits(s, a_<i))[a_i], the
teacher-forced autoregressive likelihood of the dataset's bins. No target network,
no regulariser; the greedy policy then picks the most likely bin per dimension.
`bc_action_sigma` > 0 replaces the one-hot label by an HL-Gauss distribution over the ordered
bins (`action_label_probs`): neighbouring bins share the label, so the classifier learns that
0.375 is nearer 0.5 than -1 (docs/stall.md measures what that does to success).
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf
from tf_agents.agents import tf_agent
from tf_agents.utils import common

from qtransformer.model import history, losses, targets
from qtransformer.model.network import QTransformerNetwork
from qtransformer.model.policy import QTransformerPolicy
from qtransformer.model.tokenizer import ActionTokenizer
from qtransformer.training.config import CLASSIFICATION, TrainConfig


def action_label_probs(bins: tf.Tensor, num_bins: int, sigma: float) -> tf.Tensor:
    """[..., A] HL-Gauss labels over ordered action bins: N(bin, sigma^2), bin units.

    The bins are unit-width intervals centred on 0..A-1, so this is `losses.hl_gauss_probs`
    of y = bin on the support [-0.5, A - 0.5]. Example: A = 5, bin 2, sigma 1 ->
    [0.061, 0.245, 0.388, 0.245, 0.061] (erf differences over the edges -0.5, 0.5, ..., 4.5,
    renormalised by the mass inside [-0.5, 4.5]).
    """
    y = tf.cast(bins, tf.float32)
    return losses.hl_gauss_probs(y, -0.5, num_bins - 0.5, num_bins, sigma)


class QTransformerAgent(tf_agent.TFAgent):
    """Offline Q-Transformer (or BC) learner over transition batches."""

    def __init__(
        self,
        time_step_spec,
        action_spec,
        config: TrainConfig,
        vocabulary: Sequence[str] = (),
        *,
        q_network: QTransformerNetwork | None = None,
        state_stats: tuple | None = None,
        train_step_counter: tf.Variable | None = None,
    ):
        self._config = config
        self._tokenizer = ActionTokenizer.from_spec(action_spec, config.data.action_bins)
        value_bins = config.model.value_bins if config.loss in CLASSIFICATION else None
        if q_network is None:
            q_network = QTransformerNetwork(
                history.window_spec(time_step_spec.observation, config.data.history),
                self._tokenizer.action_dims,
                config.data.action_bins,
                config.model,
                vocabulary,
                value_bins,
                state_stats,
            )
        self._q_network = q_network
        self._target_q_network = q_network.copy(name="TargetQNetwork")
        self._q_network.create_variables()
        self._target_q_network.create_variables()
        self._optimizer = tf.keras.optimizers.Adam(config.learning_rate)
        self._update_target = common.Periodically(
            lambda: common.soft_variables_update(
                self._q_network.variables,
                self._target_q_network.variables,
                config.target_update_tau,
            ),
            config.target_update_period,
            "update_target",
        )
        if train_step_counter is None:
            train_step_counter = tf.Variable(
                0, dtype=tf.int64, trainable=False, name="train_step",
                aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
            )  # fmt: skip
        value_range = config.model.value_support() if value_bins else None
        policy = QTransformerPolicy(
            time_step_spec, action_spec, q_network, self._tokenizer, value_range,
            jit_compile=config.xla_decoder, history=config.data.history,
        )  # fmt: skip
        # Numeric-only part of the step, XLA-compiled on request (strings stay outside).
        self._grads_fn = tf.function(self._loss_and_grads, jit_compile=True)
        if not config.use_xla:
            self._grads_fn = self._loss_and_grads
        super().__init__(
            time_step_spec,
            action_spec,
            policy,
            policy,
            train_sequence_length=None,
            num_outer_dims=1,
            train_step_counter=train_step_counter,
        )

    @property
    def q_network(self) -> QTransformerNetwork:
        return self._q_network

    @property
    def target_q_network(self) -> QTransformerNetwork:
        return self._target_q_network

    def _initialize(self):
        return common.soft_variables_update(
            self._q_network.variables, self._target_q_network.variables, tau=1.0
        )

    def _train(self, experience, weights=None):
        del weights
        if self._config.use_xla:  # XLA cannot compile string ops: look words up first
            experience = dict(experience)
            keys = ("observation", "next_observation")
            text = tf.concat([experience[k]["instruction"] for k in keys], 0)
            ids = tf.split(self._q_network.instruction_ids(text), 2)  # same width: concat later
            for key, key_ids in zip(keys, ids, strict=True):
                experience[key] = dict(experience[key], instruction=key_ids)
        loss, metrics, grads = self._grads_fn(experience)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if replicas > 1:  # sum the per-replica gradients (each already scaled by 1/replicas)
            # Dense first: embedding gradients are IndexedSlices of replica-dependent size.
            grads = [tf.convert_to_tensor(g) for g in grads]
            grads = tf.distribute.get_replica_context().all_reduce("sum", grads)
        if self._config.grad_clip > 0:
            grads, grad_norm = tf.clip_by_global_norm(grads, self._config.grad_clip)
        else:
            grad_norm = tf.linalg.global_norm(grads)
        variables = self._q_network.trainable_variables
        pairs = zip(grads, variables, strict=True)
        self._optimizer.apply_gradients(pairs, skip_gradients_aggregation=True)
        if self._config.loss != "bc":
            self._update_target()
        self.train_step_counter.assign_add(1)
        metrics["grad_norm"] = grad_norm / replicas  # the Learner sums over replicas
        with tf.name_scope("train/"):  # absolute scope: not "while/train/..." in the Learner
            for name, value in {"loss": loss, **metrics}.items():
                tf.summary.scalar(name, value * replicas, step=self.train_step_counter)
        return tf_agent.LossInfo(loss=loss, extra=metrics)

    def _loss(self, experience, weights=None, training=False):
        del weights
        loss, metrics = self.loss_terms(experience, training=training)
        return tf_agent.LossInfo(loss=loss, extra=metrics)

    def _loss_and_grads(self, experience):
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        variables = self._q_network.trainable_variables
        with tf.GradientTape() as tape:
            loss, metrics = self.loss_terms(experience, training=True)
            scaled = loss / replicas  # mean over the global batch after the all-reduce sum
        grads = tape.gradient(scaled, variables)
        return scaled, {k: v / replicas for k, v in metrics.items()}, grads

    def loss_terms(self, batch: dict, training: bool = False) -> tuple[tf.Tensor, dict]:
        """Total loss and a dict of scalar metrics for one batch (no variable updates)."""
        cfg = self._config
        bins = tf.cast(batch["action_bins"], tf.int32)
        logits = _apply(self._q_network, (batch["observation"], bins), training)
        if cfg.loss == "bc":
            if cfg.bc_action_sigma > 0:
                nll = losses.cross_entropy(
                    logits, action_label_probs(bins, logits.shape[-1], cfg.bc_action_sigma)
                )
            else:
                nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=bins, logits=logits)
            accuracy = tf.cast(tf.argmax(logits, -1, output_type=tf.int32) == bins, tf.float32)
            loss = tf.reduce_mean(nll)
            return loss, {"bc_nll": loss, "bc_accuracy": tf.reduce_mean(accuracy)}

        y, y_bounded, t_out, q_t = self._targets(batch, bins)
        return self._loss_from_outputs(logits, bins, y, y_bounded, t_out, q_t, batch)

    # Benchmark-only switch (`qtransformer.tools.benchmarks`): the loss on the network outputs as
    # before the fast path (log-softmax over all [B, D, A, V] logits, Q of every bin).
    _loss_as_before = False

    def _loss_from_outputs(self, logits, bins, y, y_bounded, t_out, q_t, batch):
        """(loss, metrics) from the online outputs [B, D, A, (V)] and the targets."""
        cfg, model = self._config, self._config.model
        before = self._loss_as_before
        q_all = None
        spread = cfg.td_sigma > 0  # the TD term also trains the data's neighbouring bins
        if before or cfg.loss not in CLASSIFICATION or cfg.conservative == "value":
            q_all = self._q_values(logits)  # [B, D, A]: the conservative term needs all
            q_taken = targets.taken(q_all, bins)
        else:  # Q of the data's bins only: [B, D, V] logits instead of [B, D, A, V]
            q_taken = self._q_values(targets.taken(logits, bins))
        if cfg.loss in ("mse", "mse_linear"):
            if spread:  # sum_a w_a l_a, w = 1 at the data's bin (targets.neighbour_weights)
                per_bin = losses.mse(q_all, y_bounded[..., tf.newaxis])
            else:
                td = tf.reduce_mean(losses.mse(q_taken, y_bounded))
        else:
            p_y = self._target_distribution(cfg, t_out, q_t, batch, y, y_bounded)
            if spread and before:
                per_bin = losses.cross_entropy(logits, p_y[..., tf.newaxis, :])
            elif spread:  # without the log-softmax of all [B, D, A, V] logits
                per_bin = targets.cross_entropy_every_bin(logits, p_y)
            else:
                td = tf.reduce_mean(losses.cross_entropy(targets.taken(logits, bins), p_y))
        if spread:
            w = targets.neighbour_weights(bins, logits.shape[2], cfg.td_sigma)
            td = tf.reduce_mean(tf.reduce_sum(w * per_bin, axis=-1))
        if cfg.loss in CLASSIFICATION and cfg.conservative == "distribution":
            p_min = losses.target_probs(
                "two_hot" if cfg.loss == "c51" else cfg.loss,
                tf.constant(model.v_min),
                *model.value_support(),
                model.value_bins,
                cfg.sigma_ratio,
            )  # fmt: skip  [V], broadcast over [B, D, A]
            sigma = cfg.conservative_sigma
            if before:
                cons = targets.unseen_average(losses.cross_entropy(logits, p_min), bins, sigma)
            else:
                cons = targets.unseen_cross_entropy(logits, bins, p_min, sigma)
        else:  # the MSE losses, and the "value" form: squared error of Q against v_min
            cons = targets.unseen_average(
                losses.mse(q_all, model.v_min), bins, cfg.conservative_sigma
            )
        loss = td + cfg.alpha * cons
        metrics = {
            "td_loss": td,
            "conservative": cons,
            "mean_q": tf.reduce_mean(q_taken),
            "mean_target": tf.reduce_mean(y_bounded),
            "td_error": tf.reduce_mean(tf.abs(q_taken - y_bounded)),
            "mc_bound_active": tf.reduce_mean(tf.cast(y_bounded > y, tf.float32)),
        }
        return loss, metrics

    def td_targets(self, batch: dict) -> tf.Tensor:
        """Scalar TD targets y [B, D] (MC-bounded if configured) from the target network."""
        return self._targets(batch, tf.cast(batch["action_bins"], tf.int32))[1]

    def _targets(self, batch, bins):
        """(y, y after the MC bound, target-net outputs, target-net Q).

        The last two are pairs: (on (s, data bins) [B, D, A, ...], on s' at position 0
        [B, A, ...]); only position 0 of s' (dimension 1, which sees no bins) is used.
        """
        t_out = (
            _apply(self._target_q_network, (batch["observation"], bins)),
            self._next_state_outputs(batch["next_observation"], bins),
        )
        t_out = tf.nest.map_structure(tf.stop_gradient, t_out)
        q_t = (self._q_values(t_out[0]), self._q_values(t_out[1]))
        y = targets.bellman_targets(q_t[0], q_t[1], batch["reward"], batch["discount"])
        y_bounded = (
            targets.mc_lower_bound(y, batch["mc_return"]) if self._config.mc_lower_bound else y
        )
        return y, y_bounded, t_out, q_t

    # Benchmark-only switch (`qtransformer.tools.benchmarks`): run s' through all D positions with
    # zero bins, as before the one-token pass, to measure what the one-token pass saves.
    _pad_next_state = False

    def _next_state_outputs(self, next_observation, bins) -> tf.Tensor:
        """Target-net outputs at position 0 on s' [B, A, ...]: a sequence of length 1."""
        if self._pad_next_state:
            return _apply(self._target_q_network, (next_observation, tf.zeros_like(bins)))[:, 0]
        return self._target_q_network.first_logits(next_observation)

    def q_values(self, outputs: tf.Tensor) -> tf.Tensor:
        """Scalar Q [B, D, A] from the network's outputs ([B, D, A] or [B, D, A, V])."""
        model = self._config.model
        if self._config.loss == "mse_linear":
            return outputs
        if self._config.loss == "mse":  # the paper's sigmoid-bounded Q for 0/1 rewards
            return model.v_min + (model.v_max - model.v_min) * tf.sigmoid(outputs)
        return losses.expected_value(outputs, *model.value_support())

    _q_values = q_values

    def _target_distribution(self, cfg, t_out, q_t, batch, y, y_bounded):
        model = cfg.model
        lo, hi = model.value_support()
        if cfg.loss != "c51":
            return losses.target_probs(
                cfg.loss, y_bounded, lo, hi, model.value_bins, cfg.sigma_ratio
            )
        probs = [tf.nn.softmax(t, axis=-1) for t in t_out]  # (s [B, D, A, V], s' [B, A, V])
        dist = targets.c51_target_distribution(
            probs[0], q_t[0], probs[1], q_t[1],
            batch["reward"], batch["discount"], lo, hi,
        )  # fmt: skip
        lifted = losses.two_hot_probs(y_bounded, lo, hi, model.value_bins)
        return tf.where((y_bounded > y)[..., tf.newaxis], lifted, dist)


def _apply(net: QTransformerNetwork, inputs, training: bool = False) -> tf.Tensor:
    if inputs[0]["instruction"].dtype == tf.string:
        return net(inputs, training=training)[0]
    # Word ids (the XLA path): `call` skips the spec's string dtype check; variables exist.
    return net.call(inputs, training=training)[0]
