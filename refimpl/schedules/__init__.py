"""Schedules of the operator library (issue 10): DSL templates returning `Plan`s."""
from .plan import Launch, Plan, Tensor, View, evaluate, run

__all__ = ["Plan", "Launch", "Tensor", "View", "run", "evaluate"]
