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
(`decode_weights`; qtransformer/model/transformer.py says why: 2.6x the batch-1 latency at the
paper-like size otherwise). Batched, and saveable with `PolicySaver` (action only, no tfp
distribution); the instruction vocabulary lookup is in the network, so it travels inside
the SavedModel too.

Observation history (`history` W > 1, qtransformer/model/history.py): the policy takes one
observation per call, like any tf_agents policy, and carries the window of the last W as
its policy state, `{"window": {"state": [B, W, S], "image": [B, W, H, W', 3]?}}`. At a
FIRST time step the row's window is refilled with that observation repeated (the padding the
training data uses at an episode's start), per batch element; otherwise the oldest step
drops out. A caller outside our package, with the export loaded by `tf.saved_model.load`
alone, runs an episode (or B episodes side by side) as

    policy = tf.saved_model.load("WORKDIR/policy")
    state = policy.get_initial_state(batch_size=B)      # () when W = 1
    for each control step:
        step = policy.action(time_step, state)           # time_step: a TimeStep of [B] / [B, ...]
        state = step.state                               # pass it back in on the next call
        act(step.action)

and must pass step_type FIRST (0) on each episode's first time step (a new episode in one
row resets that row only). With W = 1 the state is empty: `policy.action(time_step)` alone
works, as before.
"""

from __future__ import annotations

import tensorflow as tf
from tf_agents.policies import tf_policy
from tf_agents.trajectories import policy_step

from qtransformer.model import history as history_lib
from qtransformer.model import losses
from qtransformer.model.tokenizer import ActionTokenizer


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
        history: int = 1,
    ):
        """value_range: (v_min, v_max) for a distributional network, None for scalar outputs.

        jit_compile: XLA-compile the cached decoder (string lookup stays outside); each new
          batch size compiles once, on its first call.
        history: W, the observations per decision (the network's window); > 1 makes the
          window the policy state (module docstring).
        """
        reads = getattr(q_network, "history", 1)  # test doubles may not say
        if history != reads:
            raise ValueError(f"history {history} but the network reads {reads} steps")
        super().__init__(
            time_step_spec,
            action_spec,
            policy_state_spec=history_lib.state_spec(time_step_spec.observation, history),
            clip=False,
            name=name,
        )
        self._history = history
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
        """int32 [B, D]: the greedy bin of each dimension, chosen left to right.

        observation: the network's input, with the window axis when W > 1 (state [B, W, S]).
        """
        if not self._use_cache:
            return self._uncached_bins(observation)
        words = self._q_network.instruction_vectors(observation["instruction"])  # [B, E]
        numeric = {k: v for k, v in observation.items() if k != "instruction"}
        # Kernels reshaped here, outside XLA (qtransformer/model/transformer.py says why).
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
        observation = time_step.observation
        if self._history > 1:  # the window ending at this step becomes the new state
            first = time_step.is_first()
            window = {
                key: history_lib.advance(policy_state["window"][key], observation[key], first)
                for key in policy_state["window"]
            }
            observation, policy_state = dict(observation, **window), {"window": window}
        action = self._tokenizer.detokenize(self.greedy_bins(observation))
        return policy_step.PolicyStep(action, policy_state)

    def _distribution(self, time_step, policy_state):
        # Deliberately absent: a tfp distribution in the SavedModel's signature would make
        # `tf.saved_model.load` need tfp imported. PolicySaver logs that it skipped it.
        raise NotImplementedError("QTransformerPolicy is deterministic; use action()")
