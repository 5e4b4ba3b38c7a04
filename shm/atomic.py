"""Atomic read-modify-write on shared words, the way parisc does it.

Pure Python has no atomic instructions on shared memory.  Architectures
without them face the same problem, and arch/parisc/include/asm/atomic.h
answers it with ``__atomic_hash``: a small array of spinlocks indexed by a
hash of the word's address, taken around every read-modify-write.  This
module does exactly that with POSIX semaphores.  A plain read or a plain
store of a word needs no lock (each is one machine access); only
read-modify-write operations (``test_and_set_bit``, ``fetch_add``,
``cmpxchg``, ``xchg``) go through here.

Used for the kernel's atomic bit operations on ``Qdisc->state``
(``__QDISC_STATE_SCHED``, ``__QDISC_STATE_DEACTIVATED``) and
``netdev_queue->state`` (``__QUEUE_STATE_DRV_XOFF``), which several CPUs and
the NIC's completion path change concurrently.  Every word must be changed
*only* through these functions (or under a lock that all its writers take).
"""
from __future__ import annotations

import posix_ipc

from .ipc import IpcOwner

ATOMIC_HASH_SIZE = 16


class Atomics:
    """Hashed-lock atomics over one region's words."""

    __slots__ = ("words", "sems")

    def __init__(self, owner: IpcOwner, words: memoryview, nhash: int = ATOMIC_HASH_SIZE) -> None:
        self.words = words
        self.sems = [owner.semaphore(f"atomic{i}", 1) for i in range(nhash)]

    def _lock(self, i: int) -> posix_ipc.Semaphore:
        s = self.sems[i % len(self.sems)]
        while True:
            try:
                s.acquire()
                return s
            except posix_ipc.SignalError:
                continue

    def test_and_set_bit(self, i: int, bit: int) -> bool:
        """Set ``bit`` of word ``i``; return whether it was set before."""
        s = self._lock(i)
        w = self.words
        old = w[i]
        w[i] = old | (1 << bit)
        s.release()
        return bool(old >> bit & 1)

    def test_and_clear_bit(self, i: int, bit: int) -> bool:
        s = self._lock(i)
        w = self.words
        old = w[i]
        w[i] = old & ~(1 << bit)
        s.release()
        return bool(old >> bit & 1)

    def set_bit(self, i: int, bit: int) -> None:
        self.test_and_set_bit(i, bit)

    def clear_bit(self, i: int, bit: int) -> None:
        self.test_and_clear_bit(i, bit)

    def fetch_add(self, i: int, delta: int) -> int:
        """atomic_fetch_add: add ``delta`` to word ``i``; return the old value."""
        s = self._lock(i)
        w = self.words
        old = w[i]
        w[i] = old + delta
        s.release()
        return old

    def cmpxchg(self, i: int, old: int, new: int) -> int:
        """Store ``new`` if word ``i`` equals ``old``; return the prior value."""
        s = self._lock(i)
        w = self.words
        cur = w[i]
        if cur == old:
            w[i] = new
        s.release()
        return cur

    def xchg(self, i: int, new: int) -> int:
        s = self._lock(i)
        w = self.words
        cur = w[i]
        w[i] = new
        s.release()
        return cur


def test_bit(words: memoryview, i: int, bit: int) -> bool:
    """test_bit(): a plain read, no lock."""
    return bool(words[i] >> bit & 1)
