"""Offline training of the Q-Transformer with the tf_agents Learner.

Not built yet: this subcommand exits non-zero until its part of the pipeline lands.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser


def run(args: argparse.Namespace) -> int:
    from qtransformer.cli import CliError

    raise CliError("'train' is not built yet")
