"""What the CLI prints: our progress bars and results, not the libraries' chatter.

By default `silence_libraries()` runs before any subcommand imports TensorFlow. It hides
TensorFlow's C++ log (CUDA plugin registration errors, CPU feature notes), Python
warnings (autograph SyntaxWarnings, deprecations, PolicySaver's `distribution()` note),
absl and `tensorflow` logger warnings ("Sanitizing ..."), and gym's "unmaintained" banner
printed when tf_agents imports gym. `qtransformer --verbose ...` or
QTRANSFORMER_VERBOSE=1 keeps all of it, and shows tracebacks of expected errors too.

XLA's first compile in a process prints two lines through absl's C++ logging, which
ignores TF_CPP_MIN_LOG_LEVEL ("WARNING: All log messages before absl::InitializeLog() is
called are written to STDERR", "I0000 ... Compiled cluster using XLA! This line is logged at
most once for the lifetime of the process."). Both print once per process, so
`hide_xla_banner()` compiles one tiny function with file descriptor 2 pointed at /dev/null
(~0.1 s); the commands that compile XLA call it once TensorFlow may run ops (after the
tf.distribute strategy exists). It does nothing unless `silence_libraries()` ran.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings

ENV_VAR = "QTRANSFORMER_VERBOSE"
_state = {"silenced": False, "xla_banner_hidden": False}


def verbose_from_env() -> bool:
    return os.environ.get(ENV_VAR, "").strip().lower() not in ("", "0", "false", "no")


def silence_libraries() -> None:
    """Hide library logs and warnings in this process and in the workers it starts."""
    _state["silenced"] = True
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


def hide_xla_banner() -> None:
    """Swallow XLA's once-per-process absl log lines (module docstring); quiet mode only."""
    if not _state["silenced"] or _state["xla_banner_hidden"]:
        return
    _state["xla_banner_hidden"] = True
    import tensorflow as tf

    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            plus_one = tf.function(lambda x: x + 1.0, jit_compile=True, autograph=False)
            plus_one(tf.constant(1.0)).numpy()
    except Exception:  # noqa: BLE001 - no XLA here: then it prints nothing to hide either
        pass
    finally:
        os.dup2(saved, 2)
        os.close(saved)
