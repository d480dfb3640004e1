"""The `qtransformer` console script: one subcommand per job.

Each subcommand lives in the module that owns its job and exposes
`add_arguments(parser)` and `run(args) -> int`. Those modules import
TensorFlow and MuJoCo inside `run`, so `qtransformer --help` stays fast.
Errors a user can fix are raised as `CliError` (or ValueError/FileNotFoundError)
and printed as one line on stderr with a non-zero exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = {
    "collect": ("qtransformer.datasets.collect", "record sim episodes as an RLDS dataset"),
    "convert": ("qtransformer.datasets.convert", "convert npz / hdf5 / RLDS demos to our RLDS"),
    "train": ("qtransformer.train", "train a Q-Transformer offline on an RLDS dataset"),
    "eval": ("qtransformer.eval.evaluate", "roll a policy out in the sim; report and video"),
    "plot": ("qtransformer.eval.plots", "learning curves and bar charts from logs/reports"),
    "demo": ("qtransformer.eval.demo", "the whole pipeline end to end on the default task"),
    "bench": ("qtransformer.eval.bench", "throughput and latency benchmarks as JSON"),
    "experiment": ("qtransformer.eval.experiment", "HL-Gauss vs MSE vs two-hot vs BC study"),
    "render": ("qtransformer.sim_envs.render", "video of the scripted expert on a task"),
}


class CliError(Exception):
    """A problem with the user's input: printed as one line, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qtransformer",
        description="Q-Transformer robotic manipulation: RLDS data, offline training, "
        "MuJoCo evaluation.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        sub = subparsers.add_parser(
            name, help=help_text, description=module.__doc__.split("\n\n")[0]
        )
        module.add_arguments(sub)
        sub.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = args._module.run(args)
    except KeyboardInterrupt:
        print("qtransformer: interrupted", file=sys.stderr)
        return 130
    except (CliError, ValueError, FileNotFoundError, FileExistsError) as e:
        print(f"qtransformer {args.command}: error: {e}", file=sys.stderr)
        return 2
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
