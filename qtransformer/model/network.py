"""The autoregressive Q network of the Q-Transformer (a tf_agents Network).

Token layout (sequence length D = action dimensions):

    token 0       = enc(observation) + enc(instruction)             -> Q for dimension 1
    token i (>=1) = emb_i(a_i), the bin already chosen for dim i    -> Q for dimension i+1
    every token  += position embedding of its index

With observation history (`DataConfig.history` W > 1; the observation spec's state is
[W, S], image [W, H, W, 3], see qtransformer/model/history.py) the observation takes W tokens, one
per step of the window, and the sequence is W + D - 1 tokens long:

    token w (< W) = enc(o_{t-W+1+w}) + enc(instruction) + step_w + position 0
                    (step_w: a learned embedding of the window step, oldest first)
    token W-1     -> Q for dimension 1 (it sees the whole window)
    token W-1+i   = emb_i(a_i) + position i                         -> Q for dimension i+1

The outputs are those of the last D positions, so they keep the shapes below. W = 1 builds
no step embedding: the single-observation network, variable for variable.

The observation's "instruction" may also be given as word ids
(`instruction_ids`), so string ops can stay outside an XLA-compiled step.
A causal transformer reads the tokens, so the output at position i-1 sees only
the observation and a_1..a_{i-1} and scores every bin of dimension i. The input
bins of the last dimension are never read.

Encoders: `state`, standardised with the dataset's per-feature mean and std
(`state_stats`, std floored at 0.01), by a 2-layer MLP; `image` (when the
observation spec has one) by a 3-layer conv net whose feature maps are FiLM-modulated
by the instruction embedding (x <- x * (1 + gamma(l)) + beta(l)), read out by a spatial
softmax (image_encoder.py; optional random-shift augmentation, `ModelConfig.image_shift`);
the instruction by a word-level bag-of-words mean over an embedding table learned
from scratch. Its vocabulary is the words of the dataset's instructions
(lower-cased, split on anything that is not [a-z0-9]); unknown words map to index 0
(OOV). The lookup table lives inside the network, so a SavedModel maps strings.

Heads (`ModelConfig.head`), from the token outputs h [B, D, E] to logits [B, D, A, V]:
- "full":       logits = h W + b with W [E, A*V]: E*A*V weights, E MACs per logit.
- "factorised": the same map with W factorised through rank R = head_rank:
                logits = (h U) W2 + b, U [E, R], W2 [R, A*V]: R*(E + A*V) weights and
                R MACs per logit. Default R = 32: half the MACs of "full" at E = 64,
                a quarter at the paper-like E = 128+ (see `qtransformer.tools.benchmarks`).
                Exact whenever the full head's W has rank <= R.
With `value_bins=None` (MSE and BC) V is dropped: one scalar per bin.

Worked example: state S=10, D=4 action dims, A=64 action bins, V=32 value bins,
batch B=8: `net((obs, bins))` with obs {"state": [8, 10] float32,
"instruction": [8] string} and bins [8, 4] int32 returns (logits, ()) where
logits is [8, 4, 64, 32] (value_bins=32) or [8, 4, 64] (value_bins=None).
With a history of W=3 the observation is {"state": [8, 3, 10], "instruction": [8]} (and
"image": [8, 3, 64, 64, 3] if the spec has one); the transformer reads 3 + 3 = 6 tokens
[8, 6, E] and the logits are again [8, 4, 64, 32].
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence

import numpy as np
import tensorflow as tf
from tensorflow.python.util import tf_decorator, tf_inspect
from tf_agents.networks import network

from qtransformer.model import history as history_lib
from qtransformer.model.image_encoder import FiLMConvEncoder
from qtransformer.model.transformer import CausalBlock, StepWeights
from qtransformer.training.config import ModelConfig

_NON_WORD = "[^a-z0-9]+"


def word_vocabulary(instructions: Sequence[str]) -> list[str]:
    """Sorted distinct words of `instructions`, normalised as the network does in-graph."""
    words = set()
    for text in instructions:
        words.update(w for w in re.sub(_NON_WORD, " ", text.lower()).split() if w)
    return sorted(words)


class InstructionEncoder(tf.keras.layers.Layer):
    """String [B] -> mean of learned word embeddings [B, E]; OOV words use row 0."""

    def __init__(self, vocabulary: Sequence[str], embed_dim: int, name: str = "instruction"):
        super().__init__(name=name)
        words = list(vocabulary) or ["<empty>"]  # a table needs at least one key
        self._table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(words), tf.range(1, len(words) + 1, dtype=tf.int64)
            ),
            default_value=0,
        )
        self._num_ids = len(words) + 1
        self._embed_dim = embed_dim

    def build(self, input_shape):
        self.embeddings = self.add_weight(
            name="word_embeddings",
            shape=(self._num_ids, self._embed_dim),
            initializer=tf.keras.initializers.RandomNormal(stddev=0.1),
        )

    def word_ids(self, text: tf.Tensor) -> tf.Tensor:
        """String [B] -> int64 word ids [B, L], 0 = OOV, -1 = padding (no string ops after)."""
        text = tf.strings.regex_replace(tf.strings.lower(text), _NON_WORD, " ")
        ids = self._table.lookup(tf.strings.split(tf.strings.strip(text)))
        return ids.to_tensor(default_value=-1)

    def call(self, text_or_ids: tf.Tensor) -> tf.Tensor:
        ids = self.word_ids(text_or_ids) if text_or_ids.dtype == tf.string else text_or_ids
        present = tf.cast(ids >= 0, self.compute_dtype)[..., tf.newaxis]  # [B, L, 1]
        vectors = tf.gather(self.embeddings, tf.maximum(ids, 0)) * present  # [B, L, E]
        count = tf.maximum(tf.reduce_sum(present, axis=1), 1.0)
        return tf.reduce_sum(vectors, axis=1) / count  # empty instruction -> zeros


@contextlib.contextmanager
def _keras_dtype_policy(name: str):
    """Build layers under the Keras dtype policy `name`, then restore the previous one."""
    previous = tf.keras.mixed_precision.global_policy()
    tf.keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        tf.keras.mixed_precision.set_global_policy(previous)


def _under_model_dtype(init):
    """Run `__init__` with "mixed_bfloat16" layers when `model.mixed_precision` is set."""

    def wrapper(self, *args, **kwargs):
        model = tf_inspect.getcallargs(init, self, *args, **kwargs)["model"]
        with _keras_dtype_policy("mixed_bfloat16" if model.mixed_precision else "float32"):
            init(self, *args, **kwargs)

    # A TFDecorator keeps init's signature visible to tf_agents' Network metaclass.
    return tf_decorator.make_decorator(init, wrapper)


class QTransformerNetwork(network.Network):
    """Q logits for every bin of every action dimension; see the module docstring."""

    @_under_model_dtype
    def __init__(
        self,
        observation_spec: dict,
        action_dims: int,
        action_bins: int,
        model: ModelConfig,
        vocabulary: Sequence[str],
        value_bins: int | None,
        state_stats: tuple | None = None,
        name: str = "QTransformerNetwork",
    ):
        bins_spec = tf.TensorSpec([action_dims], tf.int32, name="action_bins")
        super().__init__(input_tensor_spec=(observation_spec, bins_spec), name=name)
        if model.embed_dim % model.num_heads:
            raise ValueError(
                f"embed_dim {model.embed_dim} is not divisible by num_heads {model.num_heads}"
            )
        if model.head not in ("factorised", "full"):
            raise ValueError(f"unknown head {model.head!r}; valid: factorised, full")
        e = model.embed_dim
        self._dims, self._bins, self._value_bins = action_dims, action_bins, value_bins
        self._head_kind = model.head
        self._vocabulary = list(vocabulary)
        self._model = model
        # State features differ in scale by 100x: standardise with dataset statistics (mean,
        # std), kept as non-trainable variables so checkpoints and SavedModels carry them.
        state_dim = observation_spec["state"].shape[-1]
        self._state_stats = state_stats
        mean, std = state_stats if state_stats is not None else (0.0, 1.0)
        mean = np.broadcast_to(np.asarray(mean, np.float32), [state_dim])
        std = np.maximum(np.broadcast_to(np.asarray(std, np.float32), [state_dim]), 1e-2)
        self._state_mean = tf.Variable(mean, trainable=False, name="state_mean")
        self._state_std = tf.Variable(std, trainable=False, name="state_std")
        self._state_mlp = tf.keras.Sequential(
            [tf.keras.layers.Dense(e, activation="gelu"), tf.keras.layers.Dense(e)]
        )
        self._instruction = InstructionEncoder(vocabulary, e)
        self._image = (
            FiLMConvEncoder(e, shift=model.image_shift) if "image" in observation_spec else None
        )
        self._bin_embedding = tf.keras.layers.Embedding(action_dims * action_bins, e)
        self._positions = tf.keras.layers.Embedding(action_dims, e)
        self._history = history_lib.history_of(observation_spec)
        if self._history > 1:  # W = 1: no such variable (checkpoints from before windows)
            self._window_steps = tf.keras.layers.Embedding(self._history, e, name="window_step")
        self._blocks = [
            CausalBlock(e, model.num_heads, model.dropout, f"block_{i}")
            for i in range(model.num_layers)
        ]
        self._final_ln = tf.keras.layers.LayerNormalization()
        v = value_bins or 1
        if model.head == "full":
            self._head_out = tf.keras.layers.Dense(action_bins * v, name="full_head")
        else:
            # Low-rank factorisation of the full head's weight: [E, A*V] ~= [E, R] @ [R, A*V].
            self._head_in = tf.keras.layers.Dense(model.head_rank, name="head_in", use_bias=False)
            self._head_out = tf.keras.layers.Dense(action_bins * v, name="head_out")

    def instruction_ids(self, text: tf.Tensor) -> tf.Tensor:
        """Word ids [B, L] for `text` [B]; `call` accepts them in place of the strings (XLA)."""
        return self._instruction.word_ids(text)

    @property
    def value_bins(self) -> int | None:
        return self._value_bins

    def copy(self, **kwargs) -> QTransformerNetwork:
        args = dict(
            observation_spec=self.input_tensor_spec[0],
            action_dims=self._dims,
            action_bins=self._bins,
            model=self._model,
            vocabulary=self._vocabulary,
            value_bins=self._value_bins,
            state_stats=self._state_stats,
            name=self.name,
        )
        args.update(kwargs)
        return type(self)(**args)

    def call(self, inputs, step_type=None, network_state=(), training=False):
        del step_type
        observation, bins = inputs
        obs = self.observation_tokens(observation, training=training)  # [B, W, E]
        # Token W-1+i (i >= 1) embeds the bin of dimension i-1 (0-based), offset per dimension.
        offsets = tf.range(self._dims - 1, dtype=tf.int32) * self._bins
        prev = tf.clip_by_value(tf.cast(bins[:, : self._dims - 1], tf.int32), 0, self._bins - 1)
        prev = self._bin_embedding(prev + offsets)
        x = tf.concat([obs, prev], axis=1)  # [B, W + D - 1, E]
        positions = tf.concat([tf.zeros([self._history - 1], tf.int32), tf.range(self._dims)], 0)
        x += self._positions(positions)[tf.newaxis]
        for block in self._blocks:
            x = block(x, training=training)
        h = self._final_ln(x[:, self._history - 1 :])  # [B, D, E]: the last D positions
        return self._head(h), network_state

    @property
    def history(self) -> int:
        """W, the observation steps each decision reads (1: no window axis)."""
        return self._history

    def observation_tokens(self, observation, words=None, training=False) -> tf.Tensor:
        """The observation's tokens [B, W, E] (W = 1 without history), before positions:
        encoded observation step + instruction (`words` [B, E] if precomputed) + step_w."""
        if words is None:
            words = self._instruction(observation["instruction"])
        words = tf.cast(words, self._state_mlp.compute_dtype)  # bfloat16 if mixed precision
        state = (tf.cast(observation["state"], tf.float32) - self._state_mean) / self._state_std
        if self._history == 1:
            obs = self._state_mlp(state) + words  # [B, E]
        else:  # [B, W, E]: the same instruction for every step
            obs = self._state_mlp(state) + words[:, tf.newaxis]
        if self._image is not None:
            obs += self._image(observation["image"], words, training=training)
        if self._history == 1:
            return obs[:, tf.newaxis]
        return obs + self._window_steps(tf.range(self._history))[tf.newaxis]

    def observation_token(self, observation, words=None, training=False) -> tf.Tensor:
        """Token 0 [B, E] of a network without history (see `observation_tokens`)."""
        return self.observation_tokens(observation, words, training)[:, -1]

    def instruction_vectors(self, text: tf.Tensor) -> tf.Tensor:
        """Instruction embedding [B, E] from strings [B] (or word ids [B, L])."""
        return self._instruction(text)

    def first_logits(self, observation, training=False) -> tf.Tensor:
        """Outputs for dimension 1 only, [B, A, V] (or [B, A]): the W observation tokens.

        With the causal mask, the last observation token sees the observation tokens alone,
        so this equals `call((observation, any_bins))[0][:, 0]` at W/(W+D-1) of the
        transformer's cost (used for the target network on s').
        """
        x = self._observation_input(self.observation_tokens(observation, training=training))
        for block in self._blocks:
            x = block(x, training=training)
        return self._head(self._final_ln(x[:, -1:]))[:, 0]

    def _observation_input(self, tokens: tf.Tensor) -> tf.Tensor:
        """Observation tokens [B, W, E] + position 0 (every observation token's position)."""
        return tokens + self._positions(tf.zeros([self._history], tf.int32))[tf.newaxis]

    def decode_weights(self) -> list[StepWeights]:
        """Per block, the step's projection kernels as matrices (`CausalBlock.step_weights`).

        Read them outside an XLA-compiled decoder and pass them to `decode_start` and
        `decode_step` (see qtransformer/model/transformer.py for why).
        """
        return [block.step_weights() for block in self._blocks]

    def decode_start(self, observation, words=None, weights=None):
        """First step of cached greedy decoding: (outputs for dimension 1, cache).

        outputs [B, A, V] (or [B, A]); cache: per block (keys, values), each [B, W, N, H].
        words: the instruction embedding [B, E] if precomputed; weights: `decode_weights()`.
        """
        x = self._observation_input(self.observation_tokens(observation, words=words))
        if self._history == 1:
            return self._decode(x, [None] * len(self._blocks), weights)
        cache = []
        for block in self._blocks:  # the W observation tokens at once
            x, layer_cache = block.prefill(x)
            cache.append(layer_cache)
        return self._head(self._final_ln(x[:, -1:]))[:, 0], cache

    def decode_step(self, prev_bins: tf.Tensor, index: int, cache, weights=None):
        """Outputs [B, A, (V)] for dimension index+1 given prev_bins [B], the bin of dimension
        `index` (1-based D index: 1..D-1), reading and extending the cache (one token)."""
        prev = tf.clip_by_value(tf.cast(prev_bins, tf.int32), 0, self._bins - 1)
        x = self._bin_embedding(prev + (index - 1) * self._bins)[:, tf.newaxis]
        return self._decode(x + self._positions(tf.constant([index]))[tf.newaxis], cache, weights)

    def _decode(self, x, cache, weights):
        weights = weights or [None] * len(self._blocks)
        new_cache = []
        for block, layer_cache, w in zip(self._blocks, cache, weights, strict=True):
            x, layer_cache = block.step(x, layer_cache, w)
            new_cache.append(layer_cache)
        return self._head(self._final_ln(x))[:, 0], new_cache

    def _head(self, h: tf.Tensor) -> tf.Tensor:
        """h [B, T, E] -> float32 logits [B, T, A, V] (or [B, T, A]), T = D or 1."""
        if self._head_kind == "factorised":
            h = self._head_in(h)  # [B, T, R]
        logits = tf.cast(self._head_out(h), tf.float32)  # [B, T, A * V]; float32 losses
        if not self._value_bins:
            return logits  # [B, T, A]
        return tf.reshape(logits, [-1, h.shape[1], self._bins, self._value_bins])
