"""Record episodes in the MuJoCo sim with the scripted expert as an RLDS dataset.

Not built yet: this subcommand exits non-zero until its part of the pipeline lands.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser


def run(args: argparse.Namespace) -> int:
    from qtransformer.cli import CliError

    raise CliError("'collect' is not built yet")
