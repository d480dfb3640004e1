"""Rollouts, metrics, videos, plots, benchmarks and experiments."""
