"""Frames from the fixed camera and video files (.mp4 via imageio-ffmpeg, .gif via pillow)."""

from __future__ import annotations

import os
import pathlib
import tempfile
from collections.abc import Sequence

import numpy as np

SUFFIXES = (".mp4", ".gif")


def render_frame(env, size: int) -> np.ndarray:
    """uint8[size, size, 3] image of `env`'s "front" camera (works without image_size)."""
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= 1024:
        raise ValueError(f"render_frame: size must be an int in [1, 1024]; got {size!r}")
    return env.physics.render(size, size, camera_id="front")


def mark_frame(frame: np.ndarray, success: bool, width: int = 3) -> np.ndarray:
    """A copy of `frame` with a green (success) or red (failure) border `width` pixels wide."""
    out = np.array(frame, copy=True)
    colour = (40, 200, 60) if success else (220, 40, 40)
    out[:width], out[-width:], out[:, :width], out[:, -width:] = colour, colour, colour, colour
    return out


def write_video(frames: Sequence[np.ndarray], path, fps: int = 20) -> pathlib.Path:
    """Writes uint8 HxWx3 `frames` to `path` (.mp4 or .gif by suffix), atomically.

    Raises ValueError on no frames, frames of different shapes, a bad fps or an unknown suffix.
    """
    path = pathlib.Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise ValueError(f"write_video: {path} must end in one of {', '.join(SUFFIXES)}")
    frames = [np.asarray(f) for f in frames]
    if not frames:
        raise ValueError(f"write_video: no frames to write to {path}")
    if any(f.shape != frames[0].shape or f.ndim != 3 or f.shape[2] != 3 for f in frames):
        raise ValueError(f"write_video: frames must all be HxWx3 of one shape ({path})")
    if fps <= 0:
        raise ValueError(f"write_video: fps must be positive; got {fps}")
    frames = [f.astype(np.uint8) for f in frames]
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write next to the target, then rename: a crash never leaves a half video at `path`.
    fd, tmp = tempfile.mkstemp(suffix=path.suffix, prefix=f".{path.stem}.", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp makes 0600; a video is meant to be shared
    try:
        if path.suffix.lower() == ".gif":
            from PIL import Image

            images = [Image.fromarray(f) for f in frames]
            duration = max(1, round(1000 / fps))
            images[0].save(tmp, save_all=True, append_images=images[1:], duration=duration, loop=0)
        else:
            import imageio.v2 as imageio

            # macro_block_size=1 keeps odd sizes as they are instead of resizing them.
            imageio.mimwrite(tmp, frames, fps=fps, codec="libx264", macro_block_size=1)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path
