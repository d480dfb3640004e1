"""Greedy autoregressive decoding of the Q-Transformer (a tf_agents TFPolicy).

For dimension i = 1..D, one forward pass with the bins chosen so far:

    a_i = argmax_a score(s, a_1..a_{i-1}, a)

score = expected value of the value distribution (classification losses) or the
network's scalar output (mse; bc, where it is the bin's logit). The bins are then
mapped back to continuous actions with `ActionTokenizer.detokenize`. No KV cache:
D passes over a sequence of length D (D = 4 here, so this is cheap). Batched, and
saveable with `PolicySaver` (action only, no tfp distribution); the instruction
vocabulary lookup is in the network, so it travels inside the SavedModel.
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
    ):
        """value_range: (v_min, v_max) for a distributional network, None for scalar outputs."""
        super().__init__(time_step_spec, action_spec, clip=False, name=name)
        self._q_network = q_network
        self._tokenizer = tokenizer
        self._value_range = value_range

    def greedy_bins(self, observation) -> tf.Tensor:
        """int32 [B, D]: the greedy bin of each dimension, chosen left to right."""
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
