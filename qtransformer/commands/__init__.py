"""The command line: the `qtransformer` console script and what every subcommand shares.

- cli.py: the console script and its table of subcommands (each lives in the module that owns
  its job: datasets/, training/train.py, eval/, sim_envs/render.py);
- flags.py: checks of flag and config values; quiet.py: library chatter hidden by default;
- output_lock.py: one writer per output, atomic writes, a failed write as one line.
"""
