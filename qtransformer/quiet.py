"""What the CLI prints: our progress bars and results, not the libraries' chatter.

By default `silence_libraries()` runs before any subcommand imports TensorFlow. It hides
TensorFlow's C++ log (CUDA plugin registration errors, CPU feature notes), Python
warnings (autograph SyntaxWarnings, deprecations, PolicySaver's `distribution()` note),
absl and `tensorflow` logger warnings ("Sanitizing ..."), and gym's "unmaintained" banner
printed when tf_agents imports gym. `qtransformer --verbose ...` or
QTRANSFORMER_VERBOSE=1 keeps all of it, and shows tracebacks of expected errors too.
"""

from __future__ import annotations

import logging
import os
import warnings

ENV_VAR = "QTRANSFORMER_VERBOSE"


def verbose_from_env() -> bool:
    return os.environ.get(ENV_VAR, "").strip().lower() not in ("", "0", "false", "no")


def silence_libraries() -> None:
    """Hide library logs and warnings in this process and in the workers it starts."""
    # Read by TensorFlow's C++ logging when it loads (and by spawned worker processes).
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    warnings.simplefilter("ignore")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    logging.getLogger("jax").setLevel(logging.ERROR)
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:  # absl comes with TensorFlow; without it there is nothing to hide
        pass
    try:  # gym prints its deprecation banner to stderr at import unless the notice is gone
        import gym_notices.notices as gym_notices

        gym_notices.notices.clear()
    except ImportError:
        pass
