"""The papers' comparison in our sim: HL-Gauss vs MSE vs two-hot vs BC.

Not built yet: this subcommand exits non-zero until its part of the pipeline lands.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser


def run(args: argparse.Namespace) -> int:
    from qtransformer.cli import CliError

    raise CliError("'experiment' is not built yet")
