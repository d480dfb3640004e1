"""Q-Transformer with classification value losses, trained offline from RLDS."""

__version__ = "0.1.0"
