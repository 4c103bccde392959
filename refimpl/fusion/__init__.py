"""Fusion groups of a compiled graph (`Step`) and the post-scheduling fusion passes."""
from .step import Step, node_step, rename

__all__ = ["Step", "node_step", "rename"]
