"""shm.vtime: virtual clocks, the window, locks timed in virtual time.

The grant rule and the counters are pinned in one process (two handles acting
as two participants); the throughput of N real processes contending for one
lock must come out at the analytical value in virtual time, whether they
share one host core or not."""

from __future__ import annotations

import os

import pytest

from shm.layout import Layout
from shm.lock import LockPolicy, LockSpace, RunAborted, lock_layout
from shm.region import Region
from shm.vtime import VCLOCK, VLOCK, VT_DONE, VT_LOCKWAIT, VirtualCpu, init_vtime, vtime_layout
from tests.shmutil import join_all, start

#: local work, critical section, bounce and handoff of the throughput tests
#: (ns of virtual time): the prototype's figures
C, H, BOUNCE, HANDOFF = 3000, 800, 200, 50


def make(owner, participants: int, nlocks: int = 1, fairness: str = "fifo"):
    layout = Layout()
    lock_layout(layout, nlocks, participants)
    vtime_layout(layout, participants, nlocks)
    region = Region(owner, "vt", layout)
    space = LockSpace(
        owner,
        region,
        [f"l{i}" for i in range(nlocks)],
        participants,
        LockPolicy(fairness=fairness, waiting="block"),
    )
    init_vtime(region)
    return region, space


def vcpu(region, me: int, slack: int = 500) -> VirtualCpu:
    return VirtualCpu(region, me, slack_ns=slack, handoff_ns=HANDOFF, bounce_ns=BOUNCE)


def clock(region, i: int) -> memoryview:
    return region.section_words("vclocks", i)


def vlock(region, i: int = 0) -> memoryview:
    return region.section_words("vlocks", i)


def test_a_grant_waits_for_the_release_plus_handoff_and_bounce(owner):
    region, space = make(owner, 2)
    a, b = vcpu(region, 0, slack=10**12), vcpu(region, 1, slack=10**12)
    (la,), (lb,) = space.bind(0), space.bind(1)
    assert a.acquire(la, 0) == 0 and a.now == 0  # never held: granted at once
    a.charge(H)
    a.release(la, 0)  # released at 800
    b.charge(100)  # b asks at 100, while a held it
    waited = b.acquire(lb, 0)
    assert b.now == H + HANDOFF + BOUNCE == 1050 and waited == 950
    b.charge(H)
    b.release(lb, 0)
    a.charge(10_000 - a.now)  # a asks long after: no wait, but the line bounces back
    assert a.acquire(la, 0) == BOUNCE and a.now == 10_000 + BOUNCE
    a.release(la, 0)
    v = vlock(region)
    assert (v[VLOCK.grants], v[VLOCK.wait], v[VLOCK.hold]) == (3, 950 + BOUNCE, 2 * H)
    assert v[VLOCK.violations] == 0 and v[VLOCK.owner] == 0
    del v, la, lb, a, b
    region.close()


def test_an_earlier_request_granted_later_is_an_order_violation(owner):
    region, space = make(owner, 2)
    a, b = vcpu(region, 0, slack=10**12), vcpu(region, 1, slack=10**12)
    (la,), (lb,) = space.bind(0), space.bind(1)
    b.charge(5000)
    b.acquire(lb, 0)
    b.release(lb, 0)
    a.charge(1000)  # a asked at 1000, before b's 5000, yet is granted after it
    a.acquire(la, 0)
    a.release(la, 0)
    assert vlock(region)[VLOCK.violations] == 1
    del la, lb, a, b
    region.close()


def test_a_lock_waiter_holds_gvt_at_its_holders_clock(owner):
    """A waiter cannot act before its lock's holder releases, so GVT counts
    it at the holder's clock: a holder far ahead passes the window for a
    nested acquire instead of waiting for its own waiter (and the acquire
    is counted as nested)."""
    region, space = make(owner, 2, nlocks=2)
    a = vcpu(region, 0, slack=0)
    outer, inner = space.bind(0)
    a.acquire(outer, 0)
    a.charge(10_000)
    a.publish()
    b = clock(region, 1)
    b[VCLOCK.now], b[VCLOCK.waits_on], b[VCLOCK.state] = 100, 0 + 1, VT_LOCKWAIT
    assert vlock(region, 0)[VLOCK.holder] == 1
    assert a.gvt() == 10_000  # b asked at 100, but acts after a releases
    a.acquire(inner, 1)  # so the window lets a through at 10_000
    a.release(inner, 1)
    a.release(outer, 0)
    assert vlock(region, 0)[VLOCK.holder] == 0
    assert a.gvt() == 100  # the lock is free: b may act at its request time
    assert clock(region, 0)[VCLOCK.nested] == 1
    assert clock(region, 0)[VCLOCK.window_waits] == 0
    b[VCLOCK.state] = VT_DONE
    del outer, inner, a, b
    region.close()


def test_writes_to_the_locks_own_line_wait_for_its_spinners(owner):
    """A lock whose line holds data its critical section writes (a qdisc's
    root lock beside qlen): the holder's unlock waits line_writes x spinners
    x spinner_ns more; a lock on a line of its own does not."""
    spinner = 70
    for writes in (0, 1):
        region, space = make(owner, 3)
        init_vtime(region, {0: writes})
        a = VirtualCpu(
            region, 0, slack_ns=10**12, handoff_ns=HANDOFF, bounce_ns=BOUNCE, spinner_ns=spinner
        )
        (la,) = space.bind(0)
        a.acquire(la, 0)
        a.charge(H)
        c = clock(region, 1)  # participant 1 asked for the lock at 300
        c[VCLOCK.now], c[VCLOCK.waits_on], c[VCLOCK.state] = 300, 1, VT_LOCKWAIT
        a.release(la, 0)
        v = vlock(region)
        assert v[VLOCK.release] == H + writes * spinner and a.now == H + writes * spinner
        assert v[VLOCK.line_spinners] == writes and v[VLOCK.hold] == H + writes * spinner
        c[VCLOCK.state] = VT_DONE
        del c, v, la, a
        region.close()


def test_a_trylock_fails_while_the_lock_is_held_in_virtual_time(owner):
    """spin_trylock at virtual 100 of a lock released at 800 fails (it was
    held at 100), though the real lock was free; the real lock is given
    back, and a trylock after the release succeeds."""
    region, space = make(owner, 2)
    a, b = vcpu(region, 0, slack=10**12), vcpu(region, 1, slack=10**12)
    (la,), (lb,) = space.bind(0), space.bind(1)
    a.acquire(la, 0)
    a.charge(H)
    a.release(la, 0)  # released at 800
    b.charge(100)
    assert not b.try_acquire(lb.trylock, 0, lb.unlock)
    assert b.now == 100 and b.held == 0 and vlock(region)[VLOCK.trylock_held] == 1
    b.charge(900)
    assert b.try_acquire(lb.trylock, 0, lb.unlock) and b.now == 1000 + BOUNCE
    b.release(lb, 0)
    del la, lb, a, b
    region.close()


def test_each_other_spinner_at_the_release_slows_the_handoff(owner):
    """The release invalidates every spinner's copy of the lock's line: the
    next holder runs handoff + spinner_ns per *other* waiter after it."""
    region, space = make(owner, 5)
    spinner = 70
    a, b = (
        VirtualCpu(
            region, i, slack_ns=10**12, handoff_ns=HANDOFF, bounce_ns=BOUNCE, spinner_ns=spinner
        )
        for i in (0, 1)
    )
    (la,), (lb,) = space.bind(0), space.bind(1)
    a.acquire(la, 0)
    a.charge(H)
    # participants 2, 3 and 4 wait for the lock too: 2 asked at 300 (before
    # the release at 800), 3 at 900 (after it: not spinning at the release),
    # 4 at 800 (at the release itself: not counted, whichever the host ran
    # first)
    for i, t in ((2, 300), (3, 900), (4, 800)):
        c = clock(region, i)
        c[VCLOCK.now], c[VCLOCK.waits_on], c[VCLOCK.state] = t, 1, VT_LOCKWAIT
        del c
    a.release(la, 0)
    b.charge(100)
    waited = b.acquire(lb, 0)
    assert b.now == H + HANDOFF + spinner + BOUNCE and waited == b.now - 100
    assert vlock(region)[VLOCK.spinners] == 1
    b.release(lb, 0)
    del la, lb, a, b
    region.close()


def _waits_at_the_window(p: VirtualCpu) -> bool:
    """Whether ``p``'s window would wait: it is given an abort that is
    always true, so a wait ends at once with RunAborted."""
    p.abort = lambda: True
    try:
        p.window()
    except RunAborted:
        return True
    finally:
        p.abort = lambda: False
    return False


def test_actions_at_one_virtual_time_go_one_way_favouring_nobody(owner):
    """Two participants at the same virtual time: exactly one passes the
    window, the other waits for it (not for the host's order); which one
    changes with the time, so neither goes first at every tie."""
    region, _space = make(owner, 2)
    a, b = vcpu(region, 0, slack=0), vcpu(region, 1, slack=0)
    a_first = []
    for t in range(1000, 1064):
        a.now = b.now = t
        a.publish()
        b.publish()
        wa, wb = _waits_at_the_window(a), _waits_at_the_window(b)
        assert wa != wb
        assert a.may_act(t) is not wa and b.may_act(t) is not wb  # the same test
        a_first.append(wb)
    assert 0 < sum(a_first) < len(a_first)
    a.now += 1
    a.publish()
    assert not _waits_at_the_window(b)  # a is later now
    region.close()


def test_a_waiter_counted_at_its_holders_clock_comes_after_the_holder(owner):
    """The holder (participant 1) at 10_000 passes the window although its
    waiter (participant 0, lower-numbered) counts at that same time."""
    region, space = make(owner, 2)
    w = clock(region, 0)
    w[VCLOCK.now], w[VCLOCK.waits_on], w[VCLOCK.state] = 100, 1, VT_LOCKWAIT
    h = vcpu(region, 1, slack=0)
    (lh,) = space.bind(1)
    h.acquire(lh, 0)  # at 0, before the waiter's request
    h.charge(10_000)
    h.publish()
    assert h.gvt() == 10_000 and not _waits_at_the_window(h)
    h.release(lh, 0)
    w[VCLOCK.state] = VT_DONE
    del w, lh, h
    region.close()


def test_a_sleep_that_times_out_resumes_at_gvt(owner):
    """Nobody woke it: it idled until the others' earliest next action
    (not its own old clock, which would act in their past), or until a
    waker's later time."""
    region, _space = make(owner, 2)
    a, b = vcpu(region, 0), vcpu(region, 1)
    a.charge(100)
    a.sleep()
    b.charge(5000)
    b.publish()
    a.wake_idle()
    assert a.now == 5000 and a.busy == 100  # idle time is not CPU time
    a.sleep()
    clock(region, 0)[VCLOCK.wake_at] = 7000
    a.wake_idle()
    assert a.now == 7000
    region.close()


def test_a_sleeping_or_finished_participant_does_not_hold_gvt(owner):
    region, _space = make(owner, 3)
    a, b, c = vcpu(region, 0, slack=0), vcpu(region, 1), vcpu(region, 2)
    b.charge(700)
    b.publish()
    c.sleep()
    assert a.gvt() == 700  # c sleeps: only b counts
    b.done()
    assert a.gvt() is None
    c.wake(at=900)  # woken by an event at virtual 900
    assert c.now == 900 and a.gvt() == 900
    assert clock(region, 1)[VCLOCK.state] == VT_DONE
    region.close()


def _contender(region, space, me: int, packets: int, slack: int, core: int | None) -> None:
    if core is not None:
        os.sched_setaffinity(0, {core})
    cpu = vcpu(region, me, slack)
    (lk,) = space.bind(me)
    for _ in range(packets):
        cpu.charge(C)
        cpu.acquire(lk, 0)
        cpu.charge(H)
        cpu.release(lk, 0)
    cpu.done()
    os._exit(0)


def _virtual_pps(owner, n: int, packets: int, slack: int, one_core: bool) -> tuple[float, dict]:
    region, space = make(owner, n)
    procs = [
        start(_contender, region, space, i, packets, slack, 0 if one_core else None)
        for i in range(n)
    ]
    assert join_all(procs, 240) == [0] * n
    ends = [clock(region, i)[VCLOCK.now] for i in range(n)]
    v = vlock(region)
    facts = {
        "grants": v[VLOCK.grants],
        "violations": v[VLOCK.violations],
        "max_skew": max(clock(region, i)[VCLOCK.max_skew] for i in range(n)),
    }
    del v
    region.close()
    return n * packets / (max(ends) / 1e9), facts


def analytic_pps(n: int) -> float:
    """N contenders, local work C, critical section H on one lock: each
    cycle costs C + H (+ a bounce when others took the lock meanwhile),
    and the lock serves one grant per H + handoff + bounce at most."""
    if n == 1:
        return 1e9 / (C + H)
    return min(n * 1e9 / (C + H + BOUNCE), 1e9 / (H + HANDOFF + BOUNCE))


@pytest.mark.slow
@pytest.mark.parametrize("n", [1, 2, 4, 8])
@pytest.mark.parametrize("one_core", [True, False], ids=["one-core", "all-cores"])
def test_virtual_throughput_is_the_analytical_value_on_any_cores(owner, n, one_core):
    packets = 600
    pps, facts = _virtual_pps(owner, n, packets, slack=500, one_core=one_core)
    assert facts["grants"] == n * packets
    assert pps == pytest.approx(analytic_pps(n), rel=0.02)
    assert facts["max_skew"] <= 500 + C


@pytest.mark.slow
def test_many_participants_on_few_cores_complete_within_the_window(owner):
    n, packets = 64, 40
    pps, facts = _virtual_pps(owner, n, packets, slack=500, one_core=False)
    assert facts["grants"] == n * packets
    assert facts["max_skew"] <= 500 + C
    # saturated: the lock's own bound
    assert pps == pytest.approx(analytic_pps(n), rel=0.02)


def _ahead_holder(region, space, ready, packets: int) -> None:
    """Far ahead in virtual time, holding the lock across long sections."""
    cpu = vcpu(region, 0, slack=500)
    (lk,) = space.bind(0)
    for _ in range(packets):
        cpu.acquire(lk, 0)
        ready.set()
        cpu.charge(50_000)  # a long critical section: the others fall behind
        cpu.release(lk, 0)
    cpu.done()
    os._exit(0)


@pytest.mark.slow
def test_no_deadlock_when_the_slowest_waits_on_a_lock_whose_holder_is_ahead(owner):
    """The holder runs ahead (it never waits at the window while holding);
    the one behind it waits on the lock and holds GVT at its request time,
    so the holder's next window wait lets it through."""
    from tests.shmutil import CTX

    region, space = make(owner, 2)
    ready = CTX.Event()
    holder = start(_ahead_holder, region, space, ready, 20)
    assert ready.wait(30)
    behind = start(_contender, region, space, 1, 20, 500, None)
    assert join_all([holder, behind], 120) == [0, 0]
    v = vlock(region)
    assert v[VLOCK.grants] == 40
    del v
    region.close()
