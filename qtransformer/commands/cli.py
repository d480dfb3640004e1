"""The `qtransformer` console script: one subcommand per job.

Each subcommand lives in the module that owns its job and exposes
`add_arguments(parser)` and `run(args) -> int`. Those modules import
TensorFlow and MuJoCo inside `run`, so `qtransformer --help` stays fast.
Errors a user can fix are raised as `CliError` (or ValueError, FileNotFoundError, ...,
see USER_ERRORS) and printed as one line on stderr with exit code 2; a bad flag value is
refused the same way when parsed (`qtransformer.commands.flags`), and so are an output that another
writer holds and a failed write such as a full disk (`qtransformer.commands.output_lock`). Anything
else is a bug: its traceback is shown (exit code 1). Library chatter is hidden unless
--verbose (quiet.py).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback

from qtransformer.commands import flags, output_lock, quiet

COMMANDS = {
    "collect": ("qtransformer.datasets.collect", "record sim episodes as an RLDS dataset"),
    "convert": ("qtransformer.datasets.convert", "convert npz / hdf5 / RLDS demos to our RLDS"),
    "train": ("qtransformer.training.train", "train a Q-Transformer offline on an RLDS dataset"),
    "eval": ("qtransformer.eval.evaluate", "roll a policy out in the sim; report and video"),
    "plot": ("qtransformer.eval.plots", "learning curves and bar charts from logs/reports"),
    "demo": ("qtransformer.eval.demo", "the whole pipeline end to end on the default task"),
    "bench": ("qtransformer.eval.bench", "throughput and latency benchmarks as JSON"),
    "experiment": ("qtransformer.eval.experiment", "HL-Gauss vs MSE vs two-hot vs BC study"),
    "diagnose": ("qtransformer.eval.diagnose", "Q calibration, unseen bins, agreement of a run"),
    "render": ("qtransformer.sim_envs.render", "video of the scripted expert on a task"),
}


class CliError(Exception):
    """A problem with the user's input: printed as one line, exit code 2."""


# Expected failures: the user can fix them; one line, exit code 2, no traceback.
USER_ERRORS = (
    CliError, ValueError, FileNotFoundError, FileExistsError, NotADirectoryError,
    IsADirectoryError, PermissionError, output_lock.OutputInUse, output_lock.WriteFailed,
)  # fmt: skip


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage block): `PROG: error: argument --x: ...`."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends "(default: X)" to a flag's help unless the help says it ("none" if unset)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text.lower() or action.required or action.nargs == 0:
            return text  # nargs 0: a switch (--overwrite), off unless given
        if action.default is argparse.SUPPRESS or not action.option_strings:
            return text
        if action.default is None or action.default == []:
            return f"{text} (default: none)"
        return super()._get_help_string(action)


VERBOSE_HELP = f"show library logs, warnings and tracebacks (or set {quiet.ENV_VAR}=1)"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="qtransformer",
        description="Q-Transformer robotic manipulation: RLDS data, offline training, "
        "MuJoCo evaluation.",
    )
    parser.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        sub = subparsers.add_parser(
            name,
            help=help_text,
            description=module.__doc__.split("\n\n")[0],
            formatter_class=_HelpFormatter,
        )
        module.add_arguments(sub)
        flags.apply_overrides(name, sub)
        # SUPPRESS: absent after the subcommand, the top-level --verbose value stays.
        sub.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                         help=VERBOSE_HELP)  # fmt: skip
        sub.set_defaults(_module=module)
    return parser


def _one_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    return lines[0] + (" [more with --verbose]" if len(lines) > 1 else "")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    verbose = args.verbose or quiet.verbose_from_env()
    if not verbose:
        quiet.silence_libraries()
    try:
        code = args._module.run(args)
    except KeyboardInterrupt:
        print("qtransformer: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - a failed write anywhere (disk full) is one line too
        shown = e if isinstance(e, USER_ERRORS) else output_lock.write_failure(e)
        if shown is None:
            raise
        if verbose:
            traceback.print_exc()
        print(f"qtransformer {args.command}: error: {_one_line(shown)}", file=sys.stderr)
        return 2
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
