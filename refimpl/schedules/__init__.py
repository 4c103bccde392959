"""Schedules of the operator library (issue 10): DSL templates returning `Plan`s.

    plan = schedule("softmax", [f16[4, 1000]], {"axis": -1})     # a Plan at the default point
    run(plan, x, y)                                                # interpreter; launch=gpu.launch for CUDA
    template_for("matmul", types).space                            # the pruned schedule space
    tune("matmul", types, {}, measure=m)                           # the fastest point (tune.py), cached
    schedule("matmul", types, {}, point="tuned")                   # the cached winner, else the default
"""
from .dispatch import TEMPLATES, schedule, template_for
from .plan import Launch, Plan, Tensor, View, evaluate, run
from .space import SM90, Limits, Resources, fits, prune
from .template import Template
from .tune import Tuned, points, tune, tune_report, tuned_plan

__all__ = ["Plan", "Launch", "Tensor", "View", "run", "evaluate", "schedule", "template_for", "TEMPLATES",
           "Template", "Limits", "Resources", "SM90", "fits", "prune",
           "Tuned", "points", "tune", "tune_report", "tuned_plan"]
