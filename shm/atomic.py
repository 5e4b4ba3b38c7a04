"""Atomic read-modify-write on shared words.

The kernel's atomic bit operations on ``Qdisc->state``
(``__QDISC_STATE_SCHED``, ``__QDISC_STATE_DEACTIVATED``) and
``netdev_queue->state`` (``__QUEUE_STATE_DRV_XOFF``) are changed
concurrently by several CPUs and by the NIC's completion path.  Two backends:

* **native** — the compiled helper (:mod:`shm.native`) uses the compiler's
  ``__atomic`` builtins: real ``lock``-prefixed instructions on the shared
  word, as the kernel does.
* **hashed locks** — when the helper cannot be built, pure Python has no
  atomic instruction on shared memory.  Architectures without them face the
  same problem, and arch/parisc/include/asm/atomic.h answers it with
  ``__atomic_hash``: a small array of spinlocks indexed by a hash of the
  word's address, taken around every read-modify-write.  This backend does
  exactly that with POSIX semaphores.

A plain read or store of a word needs neither (one machine access each);
only read-modify-writes go through here, and a word changed here must never
be changed any other way.
"""

from __future__ import annotations

from typing import Any

import posix_ipc

from . import native as _n
from .ipc import IpcOwner
from .region import Region

ATOMIC_HASH_SIZE = 16


class Atomics:
    """Atomic RMW on the words of one region (indices are word indices)."""

    __slots__ = ("_lib", "_p", "sems", "words")

    def __init__(
        self, owner: IpcOwner, region: Region, nhash: int = ATOMIC_HASH_SIZE, native: bool = True
    ) -> None:
        self.words = region.words
        self._lib: Any = None  # shm.native.lib, or None: hashed semaphores
        self._p: Any = None  # cffi int64_t* to word 0 of the region
        self.sems = []
        if native and region.cptr is not None:
            self._lib = _n.lib
            self._p = region.cptr
        else:
            self.sems = [owner.semaphore(f"atomic{i}", 1) for i in range(nhash)]

    @property
    def backend(self) -> str:
        return "native" if self._lib is not None else "hashed-semaphores"

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
        if self._lib is not None:
            return bool(self._lib.netq_test_and_set_bit(self._p + i, bit))
        s = self._lock(i)
        w = self.words
        old = w[i]
        w[i] = old | (1 << bit)
        s.release()
        return bool(old >> bit & 1)

    def test_and_clear_bit(self, i: int, bit: int) -> bool:
        if self._lib is not None:
            return bool(self._lib.netq_test_and_clear_bit(self._p + i, bit))
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
        if self._lib is not None:
            return self._lib.netq_fetch_add(self._p + i, delta)
        s = self._lock(i)
        w = self.words
        old = w[i]
        w[i] = old + delta
        s.release()
        return old

    def cmpxchg(self, i: int, old: int, new: int) -> int:
        """Store ``new`` if word ``i`` equals ``old``; return the prior value."""
        if self._lib is not None:
            return self._lib.netq_cmpxchg(self._p + i, old, new)
        s = self._lock(i)
        w = self.words
        cur = w[i]
        if cur == old:
            w[i] = new
        s.release()
        return cur

    def xchg(self, i: int, new: int) -> int:
        if self._lib is not None:
            return self._lib.netq_xchg(self._p + i, new)
        s = self._lock(i)
        w = self.words
        cur = w[i]
        w[i] = new
        s.release()
        return cur


def test_bit(words: memoryview, i: int, bit: int) -> bool:
    """test_bit(): a plain read, no lock."""
    return bool(words[i] >> bit & 1)
