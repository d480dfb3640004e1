"""Q-Transformer with classification value losses, trained offline from RLDS."""

from pathlib import Path as _Path

__version__ = "0.1.0"

# DESIGN.md keeps sim_envs/, datasets/ and eval/ beside this folder in a source checkout, and
# the installed package has them inside it (pyproject's package-dir). When Python imports this
# package from a checkout (e.g. `python -m qtransformer` run at the repository root, where the
# working directory comes first on sys.path), let qtransformer.<sub> resolve to those folders
# too, so the checkout behaves like the installed package instead of missing subpackages.
_here = _Path(__file__).resolve().parent
if not (_here / "sim_envs").is_dir() and (_here.parent / "pyproject.toml").is_file():
    __path__.append(str(_here.parent))  # noqa: F821 - the package's own __path__
