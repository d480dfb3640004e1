"""Baselines trained on the same RLDS data and exported the same way (cql_sac.py: CQL-SAC)."""
