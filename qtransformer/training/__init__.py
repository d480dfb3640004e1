"""Offline training: the config, RLDS -> batches, the training loop and its workdir.

- config.py: `TrainConfig` (with `DataConfig`, `ModelConfig`), built once at the command line;
- data.py: RLDS episodes -> n-step training transitions (tf.data);
- value_range.py: [v_min, v_max] from the dataset's metadata;
- train.py: the `train` subcommand and loop (tf_agents Learner);
- strategy.py, cluster.py: tf.distribute strategies, multi-worker set-up and launcher;
- resume.py, checkpoints.py: checks before resuming in a workdir, a readable checkpoint;
- export.py: the exported policy (PolicySaver, atomic swap into WORKDIR/policy).
"""
