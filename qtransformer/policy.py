"""Greedy autoregressive decoding of the Q-Transformer (a tf_agents TFPolicy).

For dimension i = 1..D, one forward pass with the bins chosen so far:

    a_i = argmax_a score(s, a_1..a_{i-1}, a)

score = expected value of the value distribution (classification losses) or the
network's scalar output (mse; bc, where it is the bin's logit). The bins are then
mapped back to continuous actions with `ActionTokenizer.detokenize`.

Decoding is incremental with a key/value cache (`QTransformerNetwork.decode_start` /
`decode_step`): step i feeds one token (the bin chosen for dimension i) through the
transformer, attending to the cached keys/values of the tokens before it, so D dimensions
cost D one-token passes instead of D passes over D tokens. With `jit_compile=True` (the
default of `TrainConfig.xla_decoder`) the numeric part (everything after the instruction's
string lookup: the D steps unrolled into one XLA computation) is compiled by XLA; the
compiled function travels inside the SavedModel, so `tf.saved_model.load` alone runs it.
Its attention projection kernels come in as [E, N*H] matrices reshaped outside XLA
(`decode_weights`; qtransformer/transformer.py says why: 2.6x the batch-1 latency at the
paper-like size otherwise). Batched, and saveable with `PolicySaver` (action only, no tfp
distribution); the instruction vocabulary lookup is in the network, so it travels inside
the SavedModel too.
"""

from __future__ import annotations

import tensorflow as tf
from tf_agents.policies import tf_policy
from tf_agents.trajectories import policy_step

from qtransformer import losses
from qtransformer.tokenizer import ActionTokenizer


class QTransformerPolicy(tf_policy.TFPolicy):
    """Greedy policy over a `QTransformerNetwork`."""

    def __init__(
        self,
        time_step_spec,
        action_spec,
        q_network,
        tokenizer: ActionTokenizer,
        value_range: tuple[float, float] | None,
        name: str = "QTransformerPolicy",
        jit_compile: bool = False,
    ):
        """value_range: (v_min, v_max) for a distributional network, None for scalar outputs.

        jit_compile: XLA-compile the cached decoder (string lookup stays outside); each new
          batch size compiles once, on its first call.
        """
        super().__init__(time_step_spec, action_spec, clip=False, name=name)
        self._q_network = q_network
        self._tokenizer = tokenizer
        self._value_range = value_range
        self._decode = self._cached_bins
        if jit_compile:
            self._decode = tf.function(self._cached_bins, jit_compile=True, autograph=False)

    # Benchmark/test-only switches, so `qtransformer bench` can measure what each part of
    # the fast path saves: _use_cache=False decodes with D full passes and no cache (the
    # decoder before the cache); _matrix_kernels=False hands the step the Keras [E, N, H]
    # einsum kernels instead of [E, N*H] matrices (the XLA decoder before the matrices).
    _use_cache = True
    _matrix_kernels = True

    def greedy_bins(self, observation) -> tf.Tensor:
        """int32 [B, D]: the greedy bin of each dimension, chosen left to right."""
        if not self._use_cache:
            return self._uncached_bins(observation)
        words = self._q_network.instruction_vectors(observation["instruction"])  # [B, E]
        numeric = {k: v for k, v in observation.items() if k != "instruction"}
        # Kernels reshaped here, outside XLA (qtransformer/transformer.py says why).
        weights = self._q_network.decode_weights() if self._matrix_kernels else None
        return self._decode(numeric, words, weights)

    def _scores_argmax(self, outputs: tf.Tensor) -> tf.Tensor:
        """[B, A] or [B, A, V] outputs of one dimension -> greedy bin [B] int32."""
        if self._value_range is not None:
            outputs = losses.expected_value(outputs, *self._value_range)
        return tf.argmax(outputs, axis=-1, output_type=tf.int32)

    def _cached_bins(self, observation: dict, words: tf.Tensor, weights: list | None) -> tf.Tensor:
        """Greedy bins [B, D] with the key/value cache: one token per dimension."""
        net = self._q_network
        outputs, cache = net.decode_start(observation, words, weights)
        chosen = [self._scores_argmax(outputs)]
        for i in range(1, self._tokenizer.action_dims):
            outputs, cache = net.decode_step(chosen[-1], i, cache, weights)
            chosen.append(self._scores_argmax(outputs))
        return tf.stack(chosen, axis=1)

    def _uncached_bins(self, observation) -> tf.Tensor:
        """Greedy bins [B, D] with D full passes over D tokens (reference, benchmark only)."""
        dims = self._tokenizer.action_dims
        batch = tf.shape(observation["state"])[0]
        chosen = []
        for i in range(dims):
            padding = tf.zeros([batch, dims - i], tf.int32)
            bins = tf.concat(chosen + [padding], axis=1) if chosen else padding
            outputs, _ = self._q_network((observation, bins), training=False)
            scores = outputs[:, i]  # [B, A] or [B, A, V]
            if self._value_range is not None:
                scores = losses.expected_value(scores, *self._value_range)
            chosen.append(tf.argmax(scores, axis=-1, output_type=tf.int32)[:, tf.newaxis])
        return tf.concat(chosen, axis=1)

    def _variables(self):
        return self._q_network.variables

    def _action(self, time_step, policy_state, seed=None):
        del seed
        action = self._tokenizer.detokenize(self.greedy_bins(time_step.observation))
        return policy_step.PolicyStep(action, policy_state)

    def _distribution(self, time_step, policy_state):
        # Deliberately absent: a tfp distribution in the SavedModel's signature would make
        # `tf.saved_model.load` need tfp imported. PolicySaver logs that it skipped it.
        raise NotImplementedError("QTransformerPolicy is deterministic; use action()")
