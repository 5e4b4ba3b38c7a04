"""shm.ipc: names, modes, ownership and cleanup of crashed runs."""

from __future__ import annotations

import os
import signal
import stat
import time

import pytest

from shm.ipc import IpcOwner, cleanup_stale, netq_objects
from tests.shmutil import join_all, start


def test_names_are_netq_random_and_owner_only():
    with IpcOwner() as a, IpcOwner() as b:
        assert a.token != b.token
        s = a.segment("x", 4096)
        m = a.semaphore("y", 1)
        assert s.name.startswith(f"/netq.{os.getpid()}.{a.token}.")
        mode = os.stat("/dev/shm" + s.name).st_mode
        assert stat.S_IMODE(mode) == 0o600
        assert stat.S_IMODE(os.stat("/dev/shm/sem." + m.name[1:]).st_mode) == 0o600
    assert not [o for o in netq_objects() if o.token in (a.token, b.token)]


def test_child_does_not_unlink_and_owner_does():
    with IpcOwner() as o:
        o.segment("seg", 4096)

        def child():
            o.close()  # inherited object: must be a no-op in the child

        assert join_all([start(child)]) == [0]
        assert any(x.token == o.token for x in netq_objects())
    assert not any(x.token == o.token for x in netq_objects())


def test_cleanup_removes_dead_owners_only():
    # A "crashed run": a child creates objects and dies without unlinking.
    def crashed():
        o = IpcOwner()
        o.segment("seg", 4096)
        o.semaphore("sem", 0)
        os._exit(0)  # no atexit, no close

    p = start(crashed)
    assert join_all([p]) == [0]
    with IpcOwner() as live:
        live.segment("live", 4096)
        dead = [x.entry for x in netq_objects() if x.pid == p.pid]
        assert len(dead) == 2
        removed = cleanup_stale()
        assert sorted(dead) == sorted(r for r in removed if f".{p.pid}." in r)
        assert any(x.token == live.token for x in netq_objects())


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_owner_unlinks_on_signal(sig):
    """A run interrupted by SIGTERM or Ctrl-C removes what it created."""
    from tests.shmutil import CTX

    ready = CTX.Event()

    def victim():
        with IpcOwner() as o, o.handle_signals():
            o.segment("seg", 4096)
            o.semaphore("sem", 1)
            ready.set()
            time.sleep(30)

    p = start(victim)
    assert ready.wait(10)
    assert [x for x in netq_objects() if x.pid == p.pid]
    os.kill(p.pid, sig)
    p.join(10)
    assert p.exitcode != 0
    assert not [x for x in netq_objects() if x.pid == p.pid]
