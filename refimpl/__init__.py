"""The NumPy interpreter: the executable definition of spec/SPEC.md, with sanitizer checks.

    refimpl.interpret(kernel, *args, checks=True, trace=None)
    refimpl.empty(shape, dtype)          # an array whose elements count as uninitialized
    refimpl.KernelTrap                   # .kind .phrase .kernel .loc .block .thread .buffer .index
                                         # (arguments that do not fit: spec.errors.LaunchError, §3.4)
    refimpl.Trace(block=(0,0,0), threads=[(5,0,0)])
"""
from .launch import empty, interpret
from .trace import Trace
from .traps import KernelTrap

__all__ = ["interpret", "empty", "KernelTrap", "Trace"]
