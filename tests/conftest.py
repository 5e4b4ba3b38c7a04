"""Fixtures shared by every test: no netq IPC object may outlive a test.

Tiers: a test that starts processes (a supervised run, the CLI in a
subprocess, forked lock contenders) is marked ``slow``, per test with
``@pytest.mark.slow`` or per module in :data:`SLOW_MODULES`; the in-process
tier alone is ``python -m pytest -m "not slow"`` (about a fifth of the time).
README's test command runs every tier.
"""

from __future__ import annotations

import contextlib
import gc
import os

import pytest

from netq.kernel.core.percpu import this
from netq.machine.config import RunConfig
from netq.machine.net import Net
from shm.ipc import IpcOwner, netq_objects, pid_alive

#: modules whose every test starts processes
SLOW_MODULES = frozenset(
    {
        "test_budget",
        "test_model_multiprocess",
        "test_presets",
        "test_robust",
        "test_run",
        "test_stress",
        "test_structure",
        "test_sweep",
        "test_sweep_dist",
    }
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.module is not None and item.module.__name__.rpartition(".")[2] in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)


def _mine() -> set[str]:
    """netq objects that this test process (or a dead child of it) owns.

    Objects of other live processes (a parallel pytest, a run in another
    shell) are not ours to judge."""
    me = os.getpid()
    return {o.entry for o in netq_objects() if o.pid == me or not pid_alive(o.pid)}


@pytest.fixture(autouse=True)
def no_ipc_leak():
    """Fail a test that leaves a netq segment or semaphore in /dev/shm.

    Objects present before the test, and objects of other live processes,
    are not blamed on it.
    """
    before = _mine()
    yield
    left = _mine() - before
    if left:
        # Remove what this test leaked (owner may be us, so unlink directly).
        for o in netq_objects():
            if o.entry in left:
                o.unlink()
        pytest.fail(f"test left IPC objects in /dev/shm: {sorted(left)}")


@pytest.fixture
def owner():
    """An IpcOwner that is closed (everything unlinked) after the test."""
    with IpcOwner() as o:
        yield o


# -- the model tests' fixture -----------------------------------------------------------
@pytest.fixture
def mknet(owner):
    """``mknet(cfg)`` -> a Net bound as CPU 0; cleaned up after the test."""
    nets: list[Net] = []

    def build(cfg: RunConfig) -> Net:
        net = Net(cfg, owner)
        nets.append(net)
        net.bind_cpu(0)
        return net

    yield build
    this.reset()
    while nets:
        net = nets.pop()
        gc.collect()
        # A failing test's traceback may still hold views; the owner
        # unlinks the names anyway, the mapping goes with the process.
        with contextlib.suppress(BufferError):
            net.close()
        del net
    gc.collect()
