"""The package's public names are exactly what ``__all__`` lists, sorted."""

from __future__ import annotations

import importlib.metadata

import bulkresign


def test_all_is_sorted_and_complete() -> None:
    """``__all__`` is sorted and every name in it exists on the package."""
    assert bulkresign.__all__ == sorted(bulkresign.__all__)
    for name in bulkresign.__all__:
        assert hasattr(bulkresign, name), name


def test_every_public_attribute_is_exported() -> None:
    """Every public class, function or constant on the package is listed in ``__all__``."""
    flags = {"annotations", "TYPE_CHECKING"}  # typing flags, not API
    public = {n for n in vars(bulkresign) if not n.startswith("_") and not _is_module(n)}
    public -= flags
    assert public <= set(bulkresign.__all__)


def _is_module(name: str) -> bool:
    return type(getattr(bulkresign, name)).__name__ == "module"


def test_the_version_literal_is_the_installed_version() -> None:
    """``__version__`` is a literal for a fast start; the installed metadata agrees with it."""
    assert importlib.metadata.version("bulkresign") == bulkresign.__version__
