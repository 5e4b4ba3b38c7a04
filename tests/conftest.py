"""Fixtures shared by every test: no netq IPC object may outlive a test."""
from __future__ import annotations

import os

import pytest

from shm.ipc import IpcOwner, netq_objects


def _mine() -> set[str]:
    return {o.entry for o in netq_objects()}


@pytest.fixture(autouse=True)
def no_ipc_leak():
    """Fail a test that leaves a netq segment or semaphore in /dev/shm.

    Objects present before the test (another run's, e.g. a parallel pytest
    worker) are not blamed on it.
    """
    before = _mine()
    yield
    left = _mine() - before
    if left:

        # Remove what this test leaked (owner may be us, so unlink directly).
        import posix_ipc

        for o in netq_objects():
            if o.entry in left:
                try:
                    if o.is_semaphore:
                        posix_ipc.unlink_semaphore(o.posix_name)
                    else:
                        posix_ipc.unlink_shared_memory(o.posix_name)
                except posix_ipc.ExistentialError:
                    pass
        pytest.fail(f"test left IPC objects in /dev/shm: {sorted(left)}")


@pytest.fixture
def owner():
    """An IpcOwner that is closed (everything unlinked) after the test."""
    with IpcOwner() as o:
        yield o
