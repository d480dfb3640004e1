"""The causal transformer block of the Q network, with its incremental (cached) step.

`CausalBlock.call` reads a whole token sequence [B, T, E] under a causal mask (training,
the target network). `CausalBlock.step` feeds one new token [B, 1, E] and attends to the
keys/values of the tokens before it (greedy decoding, `qtransformer.model.policy`); both give the
same numbers at the new token's position. `CausalBlock.prefill` starts such a cache from
several tokens at once (the W observation tokens of a history window).

The step's query/key/value projections can take their kernels as plain [E, N*H] matrices
(`step_weights`), reshaped from Keras' [E, N, H] einsum kernels *outside* an XLA-compiled
caller and passed in as arguments. XLA on CPU emits a dot whose operand is an [E, N, H]
kernel (or a reshape of it inside the compiled function) as a slow loop: at E = 256 a
batch-1 projection took 7x as long as the same product with an [E, E] operand, and those
three projections were most of the paper-size decoder's latency (docs/performance.md).
"""

from __future__ import annotations

import tensorflow as tf

# (query, key, value) kernels, each [E, N*H], and their biases [N, H].
StepWeights = tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]


class CausalBlock(tf.keras.layers.Layer):
    """Pre-LayerNorm transformer block with a causal self-attention mask."""

    def __init__(self, embed_dim: int, num_heads: int, dropout: float, name: str):
        super().__init__(name=name)
        self._ln1 = tf.keras.layers.LayerNormalization()
        self._ln2 = tf.keras.layers.LayerNormalization()
        self._attn = tf.keras.layers.MultiHeadAttention(
            num_heads, embed_dim // num_heads, dropout=dropout
        )
        self._mlp = tf.keras.Sequential(
            [
                tf.keras.layers.Dense(2 * embed_dim, activation="gelu"),
                tf.keras.layers.Dense(embed_dim),
            ]
        )

    def call(self, x: tf.Tensor, training: bool = False) -> tf.Tensor:
        y = self._ln1(x)
        x = x + self._attn(y, y, use_causal_mask=True, training=training)
        return x + self._mlp(self._ln2(x))

    def prefill(self, x: tf.Tensor):
        """`call` on a prefix x [B, T, E], plus its cache: (output [B, T, E], (keys, values)
        [B, T, N, H]) for `step` to extend (the projections of the same LayerNorm output)."""
        y = self._ln1(x)
        return self.call(x), (self._attn._key_dense(y), self._attn._value_dense(y))

    def step_weights(self) -> StepWeights:
        """The q, k, v kernels as [E, N*H] matrices (in the compute dtype) and their biases.

        Call it outside the XLA-compiled decoder and pass the result to `step` (see the
        module docstring); the reshape itself costs nothing (same memory, new shape).
        """
        attn = self._attn
        dense = (attn._query_dense, attn._key_dense, attn._value_dense)
        dtype = attn._query_dense.compute_dtype
        kernels = [tf.cast(tf.reshape(d.kernel, [d.kernel.shape[0], -1]), dtype) for d in dense]
        biases = [tf.cast(d.bias, dtype) for d in dense]
        return (*kernels, *biases)

    def step(self, x: tf.Tensor, cache, weights: StepWeights | None = None):
        """One new token x [B, 1, E] attending to itself and the cached tokens (inference).

        cache: None or (keys, values) [B, T, N, H] of the tokens before it; weights: from
        `step_weights` (None: the Keras layers' own kernels). Returns (output [B, 1, E],
        cache with this token's keys/values appended). Same numbers as `call` on the whole
        prefix at the last position: the causal mask lets a token see exactly the tokens
        before it, which is what the cache holds.
        """
        attn = self._attn
        y = self._ln1(x)
        if weights is None:
            query, key, value = attn._query_dense(y), attn._key_dense(y), attn._value_dense(y)
        else:
            heads, size = attn._num_heads, attn._key_dim
            flat = y[:, 0]  # [B, E]
            query, key, value = (
                tf.reshape(tf.matmul(flat, kernel), [-1, 1, heads, size]) + bias
                for kernel, bias in zip(weights[:3], weights[3:], strict=True)
            )
        if cache is not None:
            key = tf.concat([cache[0], key], axis=1)
            value = tf.concat([cache[1], value], axis=1)
        out, _ = attn._compute_attention(query, key, value, None, training=False)
        x = x + attn._output_dense(out)
        return x + self._mlp(self._ln2(x)), (key, value)
