"""The records of a lock in shared memory: the lock word and its waiter queue,
the per-CPU ``/proc/lock_stat`` row, and the per-CPU waiter slot.

They are declared here, apart from :mod:`shm.lock`, because both the Python
lock (:mod:`shm.lock`) and the compiled helper (:mod:`shm.native`, which bakes
the field indices into its C source) need them.
"""
from __future__ import annotations

from .layout import Record

#: Longest queue of waiters a fifo lock keeps (one entry per waiting CPU).
MAX_WAITERS = 64
NO_CPU = -1

LOCK = Record(
    "spinlock",
    [
        ("owner_cpu", "emulated CPU holding the lock, NO_CPU if free; written by the "
                      "acquirer (unfair) or by the releaser handing off (fifo), under the lock"),
        ("last_cpu", "CPU of the previous holder (bounce detection); under the lock"),
        ("acquired_ns", "monotonic ns when the current holder got it; under the lock"),
        ("handed_ns", "fifo: monotonic ns the releaser handed the lock to the next waiter; "
                      "under the guard"),
        ("q_head", "fifo: index of the first waiter; under the guard (the lock's semaphore)"),
        ("q_tail", "fifo: index past the last waiter; under the guard"),
        ("q_cpu", MAX_WAITERS, "fifo: ring of waiting CPUs; under the guard"),
    ],
)

STAT = Record(
    "lock_class_stats",
    [
        ("acquisitions", "times this CPU acquired the lock"),
        ("contentions", "acquisitions that had to wait"),
        ("con_bounces", "contentions while a different CPU held it"),
        ("acq_bounces", "acquisitions after a different CPU had held it"),
        ("wait_min", "ns; -1 until the first contention"),
        ("wait_max", "ns"),
        ("wait_total", "ns"),
        ("hold_min", "ns; -1 until the first release"),
        ("hold_max", "ns"),
        ("hold_total", "ns"),
        ("ahead_total", "sum over contentions of holders+waiters found ahead"),
        ("sleeps", "contended waits that went to sleep in the semaphore"),
        ("trylock_fail", "spin_trylock calls that failed"),
        ("handoffs", "fifo: contended acquisitions by handoff from the releaser"),
        ("handoff_total", "fifo: ns from the handoff to this CPU running with the lock "
                          "(the lock is held by nobody working meanwhile)"),
        ("handoff_max", "fifo: ns, the longest such gap"),
    ],
)

WAITER = Record(
    "lock_waiter",
    [
        ("pid", "process acting as this CPU; written by that process"),
        ("waiting_for", "lock id this CPU waits for, or -1; written by this CPU"),
        ("since_ns", "monotonic ns when the wait began; written by this CPU"),
    ],
)

