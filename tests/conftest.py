"""Shared test setup: headless MuJoCo rendering, quiet TensorFlow."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
