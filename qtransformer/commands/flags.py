"""Checks for command-line values, in one place for every subcommand.

Number types for argparse (`type=flags.positive_int`, ...) reject a bad value when it is
parsed, naming the flag: `qtransformer train: error: argument --batch-size: must be an
integer >= 1, got '0'` (exit code 2). The same objects check config fields
(`positive_int.check(value, "data.batch_size")`, raising ValueError), so a value read from a
JSON config obeys the flag's rule. `check_disjoint` keeps outputs away from inputs.

    parser.add_argument("--episodes", type=flags.positive_int, default=50, help="...")
    parser.add_argument("--gamma", type=flags.unit_interval_open_closed, help="...")
    parser.add_argument("--noise", type=flags.Number(float, low=0, high=2), help="...")

Modules that must not import ours (sim_envs) get their flags' types from `OVERRIDES`,
applied by the CLI when it builds the parser.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterable, Mapping
from pathlib import Path


class Number:
    """An int or float within [low, high] (either end open or absent); floats are finite.

    Called with a string (argparse `type=`): returns the number or raises
    argparse.ArgumentTypeError. `check(value, name)`: the same rule for a value that is
    already a number (config fields), raising ValueError naming `name`.
    """

    def __init__(self, kind: type, low=None, high=None, *, low_open=False, high_open=False):
        self.kind, self.low, self.high = kind, low, high
        self.low_open, self.high_open = low_open, high_open
        self.__name__ = self.describe()  # argparse shows a type's __name__ in some messages

    def describe(self) -> str:
        what = "an integer" if self.kind is int else "a finite number"
        if self.low is not None and self.high is not None:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            return f"{what} in {left}{self.low}, {self.high}{right}"
        if self.low is not None:
            return f"{what} {'>' if self.low_open else '>='} {self.low}"
        if self.high is not None:
            return f"{what} {'<' if self.high_open else '<='} {self.high}"
        return what

    def _problem(self, value) -> str | None:
        if self.kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            return "not an integer"
        if self.kind is float and (isinstance(value, bool) or not isinstance(value, int | float)):
            return "not a number"
        if isinstance(value, float) and not math.isfinite(value):
            return "not finite"
        too_low = self.low is not None and (
            value <= self.low if self.low_open else value < self.low
        )
        too_high = self.high is not None and (
            value >= self.high if self.high_open else value > self.high
        )
        return "out of range" if too_low or too_high else None

    def __call__(self, text: str):
        try:
            value = self.kind(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"must be {self.describe()}, got {text!r}") from None
        if self._problem(value):
            raise argparse.ArgumentTypeError(f"must be {self.describe()}, got {text!r}")
        return value

    def check(self, value, name: str):
        """Return `value` if it obeys the rule, else raise ValueError naming `name`."""
        if self._problem(value):
            raise ValueError(f"{name} must be {self.describe()}, got {value!r}")
        return value

    def __repr__(self) -> str:
        return f"Number({self.describe()})"


positive_int = Number(int, low=1)  # counts where zero means nothing: steps, episodes, sizes
nonneg_int = Number(int, low=0)  # seeds, "every K steps (0 = never)"
bins = Number(int, low=2)  # a discretisation needs at least two bins
finite_float = Number(float)
positive_float = Number(float, low=0, low_open=True)  # learning rates, scales
nonneg_float = Number(float, low=0)  # weights, noise std, clip norms (0 = off)
probability = Number(float, low=0, high=1)  # fractions and probabilities: [0, 1]
unit_interval_open_closed = Number(float, low=0, high=1, low_open=True)  # gamma, tau: (0, 1]
unit_interval_closed_open = Number(float, low=0, high=1, high_open=True)  # dropout: [0, 1)
seed = nonneg_int  # numpy's seeds are non-negative
image_size = Number(int, low=16, high=4096)  # camera frame height and width, pixels


# Flags of modules that must not import qtransformer (the sim_envs floor), typed here.
OVERRIDES: dict[str, dict[str, Number]] = {
    "render": {
        "--episodes": positive_int,
        "--seed": seed,
        "--size": image_size,
        "--noise": nonneg_float,
        "--fps": positive_int,
    },
}


def apply_overrides(command: str, parser: argparse.ArgumentParser) -> None:
    """Give the flags of `command` listed in OVERRIDES their checked types."""
    table = OVERRIDES.get(command, {})
    for action in parser._actions:  # noqa: SLF001 - argparse has no public accessor
        for option in action.option_strings:
            if option in table:
                action.type = table[option]


def unchecked_numeric_flags(parser: argparse.ArgumentParser) -> list[str]:
    """Flags parsed with a bare `int` or `float` (no range check): a test keeps this empty."""
    return [
        "/".join(action.option_strings)
        for action in parser._actions  # noqa: SLF001
        if action.type in (int, float)
    ]


def _resolved(path) -> Path:
    return Path(path).expanduser().resolve()


def check_disjoint(
    outputs: Mapping[str, object | None], inputs: Mapping[str, object | Iterable | None]
) -> None:
    """Raise ValueError if an output path is, contains, or lies inside an input path.

    outputs / inputs map a flag name to a path (inputs may also map to a list of paths;
    None = not given). Paths are compared after resolving symlinks and `..`, so
    `--out demos/` with `--input ./demos` is refused before anything is written.
    """
    named_inputs = []
    for flag, value in inputs.items():
        if value is None:
            continue
        values = [value] if isinstance(value, str | Path) else list(value)
        named_inputs += [(flag, v) for v in values if v is not None]
    for out_flag, out in outputs.items():
        if out is None:
            continue
        out_path = _resolved(out)
        for in_flag, source in named_inputs:
            in_path = _resolved(source)
            if out_path == in_path:
                how = "is"
            elif in_path in out_path.parents:
                how = "lies inside"
            elif out_path in in_path.parents:
                how = "contains"
            else:
                continue
            raise ValueError(
                f"{out_flag} {out} {how} {in_flag} {source}: outputs never replace or write "
                "into inputs; choose another output path"
            )
