"""A mapped shared-memory segment with a :class:`~shm.layout.Layout`.

The creator makes the segment through an :class:`~shm.ipc.IpcOwner`, stamps
the layout header and zero-fills it (fresh POSIX segments are zero already).
Forked workers inherit the mapping: there is no attach by name on the hot
path.  :meth:`Region.close` releases the views the region handed out before
it closes the mmap, because an mmap cannot be closed while a view exports it.
"""

from __future__ import annotations

import gc
import mmap
from typing import Any

import numpy as np

from . import native as _native
from .ipc import IpcOwner
from .layout import Layout


class Region:
    """One segment, mapped read/write, with its layout."""

    def __init__(self, owner: IpcOwner, what: str, layout: Layout, native: bool = True) -> None:
        self.layout = layout
        shm = owner.segment(what, layout.size)
        try:
            self.mm = mmap.mmap(shm.fd, layout.size)
        finally:
            shm.close_fd()
        self.name = shm.name
        #: the whole segment as int64 words: the hot path indexes this
        self.words = memoryview(self.mm).cast("q")
        self._views: list[Any] = [self.words]
        self._arrays: dict[str, np.ndarray] = {}
        layout.stamp(self.words)
        #: int64_t* to word 0 for the compiled helper (None without it)
        self.cptr: Any = None  # a cffi int64_t[]: no static type
        if native and _native.ffi is not None:
            self.cptr = _native.ffi.from_buffer("int64_t[]", self.mm)
        #: what record views are: the compiled Words (memoryview's interface,
        #: the integer index read/write in C), else memoryview itself
        self._record = _native.WordsOps if native and _native.WordsOps is not None else None

    def _view(self, start: int, stop: int) -> Any:
        """Words ``start:stop`` as a record view, remembered for close().

        Typed Any: a memoryview, or the compiled Words, which has memoryview's
        interface (slices, iteration, the buffer protocol, tolist, release)
        and forbids closing the mapping while it lives, as memoryview does."""
        v = self.words[start:stop]
        if self._record is not None:
            v = self._record(v)
        self._views.append(v)
        return v

    def section_words(self, name: str, i: int = 0) -> memoryview:
        """A view of element ``i`` of section ``name`` (a record's words).

        Index it with the record's field indices: ``v[QDISC.qlen]``.
        """
        sec = self.layout[name]
        b = sec.base(i)
        return self._view(b, b + sec.stride)

    def span_words(self, name: str) -> memoryview:
        """A view of a whole section (all elements)."""
        sec = self.layout[name]
        return self._view(sec.offset, sec.offset + sec.words)

    def array(self, name: str) -> np.ndarray:
        """A numpy view (no copy) of a whole section; cached."""
        a = self._arrays.get(name)
        if a is None:
            a = self.layout.array(self.mm, name)
            self._arrays[name] = a
        return a

    def close(self) -> None:
        """Release every view handed out, then unmap.

        Raises BufferError if a caller still holds a numpy view it obtained
        from :meth:`array` (drop it first): silently leaking a mapping would
        hide the bug.
        """
        if self.mm.closed:
            return
        self._arrays.clear()
        if self.cptr is not None:
            _native.ffi.release(self.cptr)
            self.cptr = None
        for v in self._views:
            v.release()
        self._views.clear()
        gc.collect()
        self.mm.close()
