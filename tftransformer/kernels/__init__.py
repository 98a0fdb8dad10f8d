"""Compute kernels beneath the tutorial's layers: same math, faster arithmetic layouts."""
