"""The image encoder of the Q network: FiLM-conditioned convolutions + spatial softmax.

    uint8 image [B, H, W, 3]  --(random shift, training only, if shift > 0)
      -> conv 3x3/2, 16  -> FiLM(instruction)     [B, H/2, W/2, 16]
      -> conv 3x3/2, 32  -> FiLM(instruction)     [B, H/4, W/4, 32]
      -> conv 3x3/1, 32  -> FiLM(instruction)     [B, H/4, W/4, 32]
      -> spatial softmax: per channel, the expected (x, y) in [-1, 1] of its activation [B, 64]
         and the channel's mean activation [B, 32]
      -> dense -> features [B, E]

Why this shape, for a 4 cm cube at 64x64 (about 5 px in the "overhead" camera): the last
feature map is 16x16 (4 px per cell) and each of its cells sees 15x15 input pixels (receptive
field 3 + 2*2 + 2*4), enough to cover the cube with context. Global average pooling (the earlier
encoder) throws away *where* a feature fired; the spatial softmax keeps it as coordinates
(Levine et al. 2016, "End-to-end training of deep visuomotor policies"), and FiLM lets the
instruction pick which object's channels fire (Perez et al. 2018). `eval/image_probe.py`
measures how well the encoder localises the instructed object from frames
(docs/benchmark.md, "Observation modes").

Random shift (Kostrikov et al. 2020, DrQ; Yarats et al. 2021): pad by `shift` pixels (mirrored
edges) and crop a random HxW window, per image, during training only. Cost: a few MACs per
pixel; it is the standard augmentation for offline RL from pixels.

MACs per 64x64 image: 32*32*27*16 + 16*16*144*32 + 16*16*288*32 = 4.0 M.

A window of W frames (observation history, qtransformer/model/history.py), uint8 [B, W, H, W', 3],
is encoded frame by frame into [B, W, E] (each frame conditioned on the same instruction); the
random shift moves all W frames of a window together, as DrQ shifts a frame stack, so the
motion between frames is not blurred by the augmentation.
"""

from __future__ import annotations

import tensorflow as tf


def random_shift(image: tf.Tensor, pad: int) -> tf.Tensor:
    """[B, H, W, C] -> [B, H, W, C]: each image shifted by up to `pad` px (edges mirrored)."""
    if pad <= 0:
        return image
    shape = tf.shape(image)
    b, h, w = shape[0], shape[1], shape[2]
    padded = tf.pad(image, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="SYMMETRIC")
    dy = tf.random.uniform([b], 0, 2 * pad + 1, dtype=tf.int32)
    dx = tf.random.uniform([b], 0, 2 * pad + 1, dtype=tf.int32)
    rows = dy[:, None] + tf.range(h)[None, :]  # [B, H]
    cols = dx[:, None] + tf.range(w)[None, :]  # [B, W]
    out = tf.gather(padded, rows, axis=1, batch_dims=1)  # [B, H, W + 2 pad, C]
    return tf.gather(out, cols, axis=2, batch_dims=1)  # [B, H, W, C]


def spatial_softmax(x: tf.Tensor) -> tf.Tensor:
    """[B, H, W, C] -> [B, 2C]: per channel the softmax-weighted mean (x, y) in [-1, 1]."""
    x = tf.cast(x, tf.float32)
    shape = tf.shape(x)
    h, w, c = shape[1], shape[2], x.shape[-1]
    flat = tf.reshape(tf.transpose(x, [0, 3, 1, 2]), [-1, c, h * w])  # [B, C, HW]
    attention = tf.nn.softmax(flat, axis=-1)
    ys, xs = tf.meshgrid(tf.linspace(-1.0, 1.0, h), tf.linspace(-1.0, 1.0, w), indexing="ij")
    grid = tf.stack([tf.reshape(xs, [-1]), tf.reshape(ys, [-1])], axis=-1)  # [HW, 2]
    points = tf.einsum("bcn,nk->bck", attention, grid)  # [B, C, 2]
    return tf.reshape(points, [-1, 2 * c])


class FiLMConvEncoder(tf.keras.layers.Layer):
    """uint8 image [B, H, W, 3] + conditioning [B, E] -> features [B, E] (module docstring)."""

    def __init__(
        self,
        embed_dim: int,
        filters=(16, 32, 32),
        strides=(2, 2, 1),
        shift: int = 0,
        name: str = "image",
    ):
        super().__init__(name=name)
        self._shift = int(shift)
        self._convs = [
            tf.keras.layers.Conv2D(f, 3, strides=s, padding="same")
            for f, s in zip(filters, strides, strict=True)
        ]
        self._films = [tf.keras.layers.Dense(2 * f, kernel_initializer="zeros") for f in filters]
        self._out = tf.keras.layers.Dense(embed_dim)

    def call(self, image: tf.Tensor, cond: tf.Tensor, training: bool = False) -> tf.Tensor:
        """[B, H, W, 3] -> [B, E], or a window [B, T, H, W, 3] -> [B, T, E]; cond [B, E]."""
        if image.shape.rank == 5:
            return self._window(image, cond, training)
        if training and self._shift:
            image = random_shift(image, self._shift)
        return self._encode(image, cond)

    def _window(self, image: tf.Tensor, cond: tf.Tensor, training: bool) -> tf.Tensor:
        steps, (h, w, c) = image.shape[1], image.shape[2:]
        if training and self._shift:  # one shift per window: frames stacked as channels
            stacked = tf.reshape(tf.transpose(image, [0, 2, 3, 1, 4]), [-1, h, w, steps * c])
            stacked = random_shift(stacked, self._shift)
            image = tf.transpose(tf.reshape(stacked, [-1, h, w, steps, c]), [0, 3, 1, 2, 4])
        frames = tf.reshape(image, [-1, h, w, c])  # [B*T, H, W, 3], window steps consecutive
        features = self._encode(frames, tf.repeat(cond, steps, axis=0))
        return tf.reshape(features, [-1, steps, features.shape[-1]])

    def _encode(self, image: tf.Tensor, cond: tf.Tensor) -> tf.Tensor:
        x = tf.cast(image, tf.float32) / 255.0
        for conv, film in zip(self._convs, self._films, strict=True):
            x = tf.nn.relu(conv(x))
            gamma, beta = tf.split(film(cond)[:, tf.newaxis, tf.newaxis, :], 2, axis=-1)
            x = x * (1.0 + tf.cast(gamma, x.dtype)) + tf.cast(beta, x.dtype)  # FiLM; 0 = identity
        pooled = tf.cast(tf.reduce_mean(x, axis=[1, 2]), tf.float32)
        return self._out(tf.concat([spatial_softmax(x), pooled], axis=-1))
