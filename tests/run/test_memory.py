"""The run's allocator setting: large freed blocks go back to the system."""

from __future__ import annotations

import platform

import pytest

from bulkresign.job import fix_mmap_threshold


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_the_mmap_threshold_is_pinned_on_glibc() -> None:
    """On glibc, run_job's helper sets the mmap threshold (mallopt answers 1)."""
    assert fix_mmap_threshold() is True


def test_pinning_never_raises() -> None:
    """Whatever the C library, the helper answers a bool and leaves the process running."""
    assert isinstance(fix_mmap_threshold(), bool)
