"""Measurements behind `bench` and `diagnose`: speed of the model, why a Q-learner fails.

- benchmarks.py: throughput and latency on synthetic batches (`qtransformer bench`);
- diagnostics.py: Q calibration, unseen greedy bins, agreement (numpy; `qtransformer diagnose`).
"""
