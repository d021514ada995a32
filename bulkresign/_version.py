"""The version: one literal, which pyproject.toml reads (``[tool.setuptools.dynamic]``).

A literal rather than ``importlib.metadata.version()``: that lookup costs ~50 ms at every start,
a twentieth of the one second a run has to its first request.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
