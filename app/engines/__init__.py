"""Pieces plugged into MONAI's Ignite engines, grouped by what they serve: ``training`` (trainer handlers, the
learning-rate schedule, batch preparation), ``inferers`` (the inferers an evaluator or ``unetseg infer`` runs) and
``evaluation`` (the report handler and metric adapters of an evaluator)."""
