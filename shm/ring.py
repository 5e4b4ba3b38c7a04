"""Single-producer/single-consumer descriptor rings in shared memory.

A ring is ``size`` (a power of two) descriptors of :data:`DESC` (eight int64
words, one cache line) plus a producer and a consumer index.  Indices only
grow; the slot of index ``i`` is ``i & (size - 1)``.  The producer writes the
descriptor, then publishes ``prod``; the consumer reads descriptors up to
``prod``, then publishes ``cons``.  No lock sits between the two: each index
has one writer.  (On x86, stores are seen in program order (TSO) and CPython
issues each store as a separate instruction, which is the barrier discipline a
driver gets from ``wmb()`` before the doorbell write.  A weakly ordered CPU
would need explicit barriers here.)

"Single producer" is per moment, not per process: the driver's TX ring is
written by whichever CPU holds the queue's ``_xmit_lock`` (HARD_TX_LOCK), as in
the kernel.  A qdisc's band FIFOs use the same ring under the qdisc root lock.

With the compiled helper, single descriptors and batches go through the
methods of a small C type (:data:`shm.native.RingOps`: ~100 ns a produce +
consume pair on the development VM, against ~670 ns in Python); without it,
single descriptors go through ``struct.pack_into``/``unpack_from`` and
batches through numpy.  The records (:data:`DESC`, :data:`RING`) live in
:mod:`shm.ringrec`.  ``RING.wake`` is a consumer's request to be woken after
the next publish (see ``cancel_wake``).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from . import native
from .layout import WORD, Layout
from .ringrec import DESC_WORDS, RING

if TYPE_CHECKING:
    from .region import Region


_PACK = struct.Struct("<8q")


def is_power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def ring_sections(layout: Layout, name: str, nrings: int, size: int) -> None:
    """Add ``nrings`` rings of ``size`` descriptors to ``layout``."""
    if not is_power_of_two(size):
        raise ValueError(f"ring size must be a power of two, got {size}")
    layout.add(f"{name}_idx", RING, nrings)
    layout.add_raw(f"{name}_desc", (nrings, size, DESC_WORDS))


def desc_fields(cls: type, fields: tuple[str | tuple[str, type, str, int], ...]) -> None:
    """Say where :meth:`Ring.produce_from` finds the eight words of a
    descriptor (:data:`DESC` order) in an object of ``cls``: per word the
    name of one of ``cls``'s ``__slots__`` holding an int, or ``(name,
    type, name2, default)`` for slot ``name2`` of the ``type`` object held
    in slot ``name`` (``default`` when that holds None).  The compiled
    helper then copies the words without a tuple being built; the Python
    ring calls ``obj.desc()``, which must give the same words.  One type
    per process (the last one named)."""
    if native.desc_fields is not None:
        native.desc_fields(cls, fields)


class Ring:
    """One ring of a ring section (see :func:`ring_sections`).

    ``produce``, ``produce_from``, ``consume``, ``free`` and ``used`` are the
    compiled helper's methods (:data:`shm.native.RingOps`) when the region is
    mapped for it, else Python methods (``_py_produce`` ...; ``used`` is
    ``__len__``); both work on the same
    words, so processes with either backend share a ring."""

    __slots__ = (
        "_base",
        "_cons",
        "_mm",
        "_ops",
        "_prod",
        "consume",
        "desc",
        "free",
        "idx",
        "idx_word",
        "mask",
        "produce",
        "produce_from",
        "size",
        "slot0_word",
        "used",
    )

    #: append one descriptor (8 ints); False if the ring is full
    produce: Callable[[Sequence[int]], bool]
    #: remove and return the oldest descriptor, or None if the ring is empty
    consume: Callable[[], tuple[int, ...] | None]
    #: descriptors that may still be produced (size - len)
    free: Callable[[], int]
    #: len(ring), without the Python call __len__ costs (the hot paths' form)
    used: Callable[[], int]
    #: produce(obj.desc()), the words read straight from obj's slots by the
    #: compiled helper (see :func:`desc_fields`)
    produce_from: Callable[[Any], bool]

    def __init__(self, region: Region, name: str, i: int) -> None:
        self.idx = region.section_words(f"{name}_idx", i)
        #: word index of this ring's RING record in the region (for atomics)
        self.idx_word = region.layout[f"{name}_idx"].base(i)
        sec = region.layout[f"{name}_desc"]
        self.size = sec.shape[1]
        self.mask = self.size - 1
        self.desc = region.array(f"{name}_desc")[i]  # (size, 8) int64 view
        self._mm = region.mm
        self._base = sec.byte_offset(i)  # byte offset of slot 0
        #: word index of slot 0 in the region (for the compiled helper)
        self.slot0_word = self._base // WORD
        self._prod = RING.prod
        self._cons = RING.cons
        self._ops = None
        if native.RingOps is not None and region.cptr is not None:
            addr = int(native.ffi.cast("intptr_t", region.cptr))
            self._ops = native.RingOps(
                region.cptr,
                addr + self.idx_word * WORD,
                addr + self._base,
                self.size,
                np.empty,
                np.int64,
            )
            self.produce = self._ops.produce
            self.consume = self._ops.consume
            self.free = self._ops.free
            self.used = self._ops.used
            self.produce_from = self._ops.produce_from
        else:
            self.produce = self._py_produce
            self.consume = self._py_consume
            self.free = self._py_free
            self.used = self.__len__
            self.produce_from = self._py_produce_from

    # -- both sides ---------------------------------------------------------
    def __len__(self) -> int:
        """Descriptors produced and not yet consumed.

        Safe from any process: cons is read before prod, and prod never
        falls behind a cons read earlier, so the difference is >= 0 (read
        the other way round, a third party could see a negative length)."""
        c = self.idx[self._cons]
        return self.idx[self._prod] - c

    def _py_free(self) -> int:
        """free() in Python."""
        c = self.idx[self._cons]
        return self.size - (self.idx[self._prod] - c)

    # -- producer -------------------------------------------------------------
    def _py_produce(self, d: Sequence[int]) -> bool:
        """produce() in Python: struct.pack_into the slot, then publish prod."""
        idx = self.idx
        p = idx[self._prod]
        if p - idx[self._cons] >= self.size:
            return False
        _PACK.pack_into(self._mm, self._base + ((p & self.mask) << 6), *d)
        idx[self._prod] = p + 1
        return True

    def _py_produce_from(self, obj: Any) -> bool:
        """produce_from() in Python: produce(obj.desc())."""
        return self._py_produce(obj.desc())

    def produce_batch(self, descs: np.ndarray) -> int:
        """Append as many rows of an (n, 8) int64 array as fit; return count."""
        ops = self._ops
        if ops is not None:
            try:
                n: int = ops.put(descs)  # checks: C-contiguous whole int64 descriptors
                return n
            except (BufferError, ValueError):
                pass  # another layout: the Python path copies it
        idx = self.idx
        p = idx[self._prod]
        n = min(len(descs), self.size - (p - idx[self._cons]))
        if n <= 0:
            return 0
        s = p & self.mask
        first = min(n, self.size - s)
        self.desc[s : s + first] = descs[:first]
        if n > first:
            self.desc[: n - first] = descs[first:n]
        idx[self._prod] = p + n
        return n

    # -- consumer -------------------------------------------------------------
    def _py_consume(self) -> tuple[int, ...] | None:
        """consume() in Python: struct.unpack_from the slot, then publish cons."""
        idx = self.idx
        c = idx[self._cons]
        if c == idx[self._prod]:
            return None
        d = _PACK.unpack_from(self._mm, self._base + ((c & self.mask) << 6))
        idx[self._cons] = c + 1
        return d

    def peek_batch(self, limit: int) -> np.ndarray:
        """Copy up to ``limit`` available descriptors (n, 8) without consuming."""
        idx = self.idx
        c = idx[self._cons]
        n = min(idx[self._prod] - c, limit)
        if n <= 0:
            return np.empty((0, DESC_WORDS), dtype=np.int64)
        s = c & self.mask
        first = min(n, self.size - s)
        if first == n:
            return self.desc[s : s + n].copy()
        return np.concatenate((self.desc[s:], self.desc[: n - first]))

    def advance(self, n: int) -> None:
        """Consume ``n`` descriptors previously returned by :meth:`peek_batch`."""
        self.idx[self._cons] += n

    # -- the consumer's doorbell request (RING.wake) -----------------------------
    # A consumer that wants to sleep sets ``wake`` with a full barrier (an
    # atomic xchg on ``idx_word + RING.wake``), then looks at the ring again
    # before sleeping; a producer, after publishing ``prod``, tests ``wake``
    # and, when set, clears it and posts the consumer's semaphore.  The two
    # store-then-load sequences need a barrier each so that one side always
    # sees the other (the consumer's xchg; the compiled produce publishes
    # ``prod`` with a seq_cst store).  The doorbell itself is not the ring's:
    # its owner (the driver) posts it.

    def cancel_wake(self) -> None:
        """Consumer: no doorbell wanted any more (it is awake)."""
        self.idx[RING.wake] = 0

    def consume_batch(self, limit: int) -> np.ndarray:
        """Remove up to ``limit`` descriptors; an (n, 8) int64 array."""
        ops = self._ops
        if ops is not None:
            got: np.ndarray = ops.take_array(limit)
            return got
        out = self.peek_batch(limit)
        if len(out):
            self.advance(len(out))
        return out
