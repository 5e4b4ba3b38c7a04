"""shm.lock: mutual exclusion, fifo order, statistics, recovery — real processes."""

from __future__ import annotations

import os
import signal
import time

import pytest

from shm import native
from shm.layout import Layout
from shm.lock import NO_CPU, LockPolicy, LockSpace, lock_layout
from shm.region import Region
from tests.shmutil import join_all, start, wait_until

MODES = [(f, w) for f in ("fifo", "unfair") for w in ("spin", "block", "adaptive")]
#: every test runs on the compiled helper (if it builds here) and on pure Python
BACKENDS = [
    pytest.param(
        True,
        id="native",
        marks=pytest.mark.skipif(native.lib is None, reason=native.unavailable_reason),
    ),
    pytest.param(False, id="python"),
]


@pytest.fixture(params=BACKENDS)
def use_native(request):
    return request.param


def make_space(owner, nlocks: int, ncpus: int, policy: LockPolicy, use_native: bool = True):
    layout = Layout()
    lock_layout(layout, nlocks, ncpus)
    layout.add_raw("scratch", (64,))
    region = Region(owner, "test", layout, native=use_native)
    space = LockSpace(owner, region, [f"lock{i}" for i in range(nlocks)], ncpus, policy)
    return region, space


def scratch(region) -> int:
    return region.layout["scratch"].offset


@pytest.mark.slow
@pytest.mark.parametrize("fairness,waiting", MODES)
def test_mutual_exclusion(owner, fairness, waiting, use_native):
    nproc, iters = 4, 1500
    policy = LockPolicy(fairness, waiting, spin_ns=5_000, yield_spin=True)
    region, space = make_space(owner, 1, nproc, policy, use_native)
    s = scratch(region)

    def worker(cpu):
        (lk,) = space.bind(cpu)
        w = region.words
        for _ in range(iters):
            lk.lock()
            v = w[s]  # a non-atomic read-modify-write: only the lock protects it
            if v % 97 == 0:
                os.sched_yield()  # widen the window for a lost update
            w[s] = v + 1
            lk.unlock()

    procs = [start(worker, c) for c in range(nproc)]
    assert join_all(procs, 60) == [0] * nproc
    assert region.words[s] == nproc * iters
    (row,) = space.stats()
    assert row["acquisitions"] == nproc * iters
    assert row["acquisitions_by_cpu"] == [iters] * nproc
    assert row["contentions"] <= row["acquisitions"]
    assert row["con_bounces"] <= row["contentions"]
    assert row["acq_bounces"] <= row["acquisitions"]
    assert row["holdtime_min_ns"] <= row["holdtime_max_ns"] <= row["holdtime_total_ns"]
    if row["contentions"]:
        assert 0 <= row["waittime_min_ns"] <= row["waittime_max_ns"] <= row["waittime_total_ns"]
    assert space.owner(0) == NO_CPU
    region.close()


@pytest.mark.slow
@pytest.mark.parametrize("waiting", ["spin", "block", "adaptive"])
def test_fifo_serves_waiters_in_arrival_order(owner, waiting, use_native):
    nwait = 4
    policy = LockPolicy("fifo", waiting, spin_ns=2_000, yield_spin=True)
    region, space = make_space(owner, 1, nwait + 1, policy, use_native)
    s = scratch(region)
    holder_cpu = nwait
    (lk,) = space.bind(holder_cpu)
    lk.lock()

    def waiter(cpu):
        (mine,) = space.bind(cpu)
        mine.lock()
        w = region.words
        n = w[s]
        w[s + 1 + n] = cpu  # log the order of acquisition
        w[s] = n + 1
        mine.unlock()

    procs = []
    arrival = [2, 0, 3, 1]
    rec = region.section_words("locks", 0)
    from shm.lock import LOCK

    for k, cpu in enumerate(arrival):
        procs.append(start(waiter, cpu))
        # The next waiter starts only once this one is queued.
        wait_until(lambda k=k: rec[LOCK.q_tail] - rec[LOCK.q_head] == k + 1, what="waiter queued")
    lk.unlock()
    assert join_all(procs, 30) == [0] * nwait
    assert [region.words[s + 1 + i] for i in range(nwait)] == arrival
    # every queued waiter got the lock by a handoff, and each gap was timed
    (row,) = space.stats()
    assert row["handoffs"] == nwait == row["contentions"]
    assert 0 < row["handoff_max_ns"] <= row["handoff_total_ns"]
    rec.release()
    region.close()


def test_unfair_trylock_and_stats(owner, use_native):
    region, space = make_space(owner, 2, 2, LockPolicy("unfair", "block"), use_native)
    a, b = space.bind(0)
    # the compiled lock type with the native helper, the Python methods without
    assert (a._ops is not None) == (use_native and native.LockOps is not None)
    assert a.trylock()
    assert a.is_locked() and not b.is_locked()
    assert not a.trylock()
    a.unlock()
    b.lock()
    b.unlock()
    (a1, _) = space.bind(1)  # the same lock, taken by another CPU: a bounce
    a1.lock()
    a1.unlock()
    a.lock()  # and back
    a.unlock()
    ra, rb = space.stats()
    # a lock's first acquisition moves nothing; each change of CPU does
    assert (ra["acquisitions"], ra["trylock_fail"], ra["acq_bounces"]) == (3, 1, 2)
    assert ra["handoffs"] == 0  # only fifo locks hand over
    assert ra["acquisitions_by_cpu"] == [2, 1]
    assert (rb["acquisitions"], rb["contentions"], rb["acq_bounces"]) == (1, 0, 0)
    region.close()


def test_bounce_cost_adds_remote_numa():
    p = LockPolicy("fifo", "spin", bounce_ns=100, remote_ns=1000, numa_node=(0, 0, 1, 1, 0))
    assert p.bounce_cost(0, 1) == 100  # same node
    assert p.bounce_cost(1, 2) == 1100  # across nodes
    assert LockPolicy(bounce_ns=100).bounce_cost(0, 3) == 100


@pytest.mark.slow
@pytest.mark.parametrize("fairness", ["fifo", "unfair"])
def test_holder_killed_is_detected_and_recovered(owner, fairness, use_native):
    region, space = make_space(owner, 1, 2, LockPolicy(fairness, "block"), use_native)

    def holder():
        (lk,) = space.bind(1)
        lk.lock()
        time.sleep(60)

    p = start(holder)
    wait_until(lambda: space.owner(0) == 1, what="child holds the lock")
    (lk,) = space.bind(0)
    assert not lk.trylock()
    assert not lk.recover()  # holder alive: never disturbed
    os.kill(p.pid, signal.SIGKILL)
    p.join(10)
    held = space.holders()
    assert held and held[0]["owner_cpu"] == 1 and held[0]["owner_alive"] is False
    assert lk.recover()
    assert lk.trylock()
    lk.unlock()
    region.close()


def test_default_waiting_says_why():
    mode, _spin, why = LockPolicy.default_waiting(5, 2)
    assert mode == "adaptive" and "oversubscribed" in why
    with pytest.raises(ValueError, match="fairness"):
        LockPolicy("ticket", "spin")


@pytest.mark.slow
def test_sigterm_ends_a_blocked_wait(owner, use_native):
    """A process sleeping in a semaphore wait still honours SIGTERM: posix_ipc
    reports the handler's exception as SignalError, and the wait re-raises it."""
    import multiprocess as mp

    from shm.ipc import IpcOwner, netq_objects

    region, space = make_space(owner, 1, 2, LockPolicy("fifo", "block"), use_native)
    (lk,) = space.bind(1)
    lk.lock()
    ready = mp.get_context("fork").Event()

    def waiter():
        with IpcOwner() as mine, mine.handle_signals():
            mine.segment("own", 4096)
            (w,) = space.bind(0)
            ready.set()
            w.lock()  # blocks: cpu 1 holds it

    p = start(waiter)
    assert ready.wait(10)
    wait_until(lambda: space.waiters(0) == [0], what="child waiting")
    os.kill(p.pid, signal.SIGTERM)
    p.join(10)
    assert p.exitcode is not None and p.exitcode != 0
    assert not [o for o in netq_objects() if o.pid == p.pid]
    lk.unlock()
    region.close()
