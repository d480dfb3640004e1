"""Run the whole pipeline end to end on the embedded default.

Not built yet: this subcommand exits non-zero until its part of the pipeline lands.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser


def run(args: argparse.Namespace) -> int:
    from qtransformer.cli import CliError

    raise CliError("'demo' is not built yet")
