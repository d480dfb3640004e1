"""Can the image encoder see where the instructed object is? A supervised localisation probe.

    python -m qtransformer.eval.image_probe --out eval/results/image_probe.json   # ~3 min, CPU

The pixels mode gives the learner a 64x64 frame and the instruction, nothing else about the
objects. Before blaming RL for a pixels result, check perception: train the network's own image
path (`FiLMConvEncoder` conditioned on `InstructionEncoder`, the layers of
`QTransformerNetwork`) plus a linear read-out to regress, from frame + instruction, the table
(x, y) of the object the instruction names and of the bowl. pick_place scenes in pixels mode,
each after 0-9 random gripper moves (so the gripper is anywhere, sometimes over an object);
train and held-out scenes come from envs of different seeds.

Reported on the held-out scenes, in cm (a 4 cm cube spans about 5 pixels at 64x64):
  object_error_cm     |prediction - instructed object|, mean and 90th percentile
  bowl_error_cm       the same for the bowl
  distractor_cm       |prediction - the other object|: large if the words chose the object
  mean_baseline_cm    predicting the training set's mean position (what no perception gets)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def render_scenes(count: int, seed: int, size: int) -> dict:
    """{image uint8[N, S, S, 3], instruction [N], object/bowl/other float32[N, 2]}: `count`
    resets of one pixels-mode pick_place env seeded `seed`, each after random gripper moves."""
    from qtransformer.sim_envs import suite

    env = suite.make("pick_place", seed=seed, obs="pixels", image_size=size)
    rng = np.random.default_rng(seed)
    images, texts, obj, bowl, other = [], [], [], [], []
    for _ in range(count):
        time_step = env.reset()
        for _ in range(rng.integers(0, 10)):
            time_step = env.step(rng.uniform(-1, 1, 4).astype(np.float32))
        task, physics = env.task, env.physics
        kinds = [e for e in task.entities(physics) if e[0] != "bowl"]
        named = task.object_pos(physics)
        images.append(time_step.observation["image"])
        texts.append(task.language_instruction)
        obj.append(named[:2])
        bowl.append(task.target_pos(physics)[:2])
        other.append(next(p for _, _, p in kinds if not np.allclose(p, named))[:2])
    as_array = lambda xs: np.asarray(xs, np.float32)  # noqa: E731
    return {
        "image": np.stack(images),
        "instruction": np.asarray(texts, object),
        "object": as_array(obj),
        "bowl": as_array(bowl),
        "other": as_array(other),
    }


def probe(train: dict, test: dict, steps: int, batch: int, seed: int, embed_dim: int) -> dict:
    import tensorflow as tf

    from qtransformer.model.image_encoder import FiLMConvEncoder
    from qtransformer.model.network import InstructionEncoder, word_vocabulary

    tf.random.set_seed(seed)
    words = InstructionEncoder(word_vocabulary(list(train["instruction"])), embed_dim)
    encoder = FiLMConvEncoder(embed_dim)
    readout = tf.keras.layers.Dense(4)
    scale = 10.0  # metres -> decimetres: targets of order 1

    def predict(image, text):
        cond = words(text)
        return readout(tf.nn.gelu(encoder(image, cond) + cond)) / scale  # [B, 4] metres

    target = np.concatenate([train["object"], train["bowl"]], 1)
    predict(train["image"][:1], tf.constant(train["instruction"][:1]))  # build the variables
    variables = words.trainable_variables + encoder.trainable_variables
    variables += readout.trainable_variables
    optimizer = tf.keras.optimizers.Adam(1e-3)

    @tf.function
    def step(image, text, y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square((predict(image, text) - y) * scale))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return loss

    rng = np.random.default_rng(seed)
    n = len(target)
    for _ in range(steps):
        idx = rng.integers(0, n, batch)
        step(train["image"][idx], tf.constant(train["instruction"][idx]), target[idx])
    pred = np.concatenate([
        predict(test["image"][i : i + 256], tf.constant(test["instruction"][i : i + 256])).numpy()
        for i in range(0, len(test["image"]), 256)
    ])  # fmt: skip

    def error_cm(p, y):
        d = np.linalg.norm(p - y, axis=1) * 100
        return {"mean": round(float(d.mean()), 2), "p90": round(float(np.percentile(d, 90)), 2)}

    mean = target.mean(0)
    return {
        "object_error_cm": error_cm(pred[:, :2], test["object"]),
        "bowl_error_cm": error_cm(pred[:, 2:], test["bowl"]),
        "distractor_cm": error_cm(pred[:, :2], test["other"]),
        "mean_baseline_cm": {
            "object": error_cm(np.broadcast_to(mean[:2], test["object"].shape), test["object"]),
            "bowl": error_cm(np.broadcast_to(mean[2:], test["bowl"].shape), test["bowl"]),
        },
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-scenes", type=int, default=2000)
    parser.add_argument("--test-scenes", type=int, default=500)
    parser.add_argument("--size", type=int, default=64, help="frame side (collect --image-size)")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args(argv)
    from qtransformer.commands import quiet

    quiet.silence_libraries()
    start = time.perf_counter()
    train = render_scenes(args.train_scenes, 0, args.size)
    test = render_scenes(args.test_scenes, 1_000_000, args.size)  # another random stream
    render_s = time.perf_counter() - start
    results = probe(train, test, args.steps, args.batch, args.seed, embed_dim=64)
    results.update(
        image_size=args.size, train_scenes=args.train_scenes, test_scenes=args.test_scenes,
        steps=args.steps, batch=args.batch, seed=args.seed, render_s=round(render_s, 1),
        wall_s=round(time.perf_counter() - start, 1),
    )  # fmt: skip
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
