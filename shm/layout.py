"""Shared-memory layouts, declared once as numpy structured dtypes.

A :class:`Record` is a C-like struct of signed 64-bit words, padded to whole
64-byte cache lines (unless it is a packed element such as a descriptor) so
that per-CPU hot fields never share a line with another CPU's.  Each field is
declared with one line saying what it means and which lock protects it; the
record exposes each field's *word index* as an attribute (``QDISC.qlen``),
which the hot path uses with a ``memoryview`` cast to ``'q'``: a numpy scalar
access costs several hundred ns, a memoryview index ~60 ns.

A :class:`Layout` places named sections (arrays of records, or raw int64
arrays) one after another, each starting on a cache line.  Nothing outside
this module computes offsets.  The header of every segment carries a magic,
:data:`LAYOUT_VERSION` and a digest of the section table so that a process
attaching with a different layout fails loudly instead of reading garbage.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

CACHELINE = 64
WORD = 8
WORDS_PER_LINE = CACHELINE // WORD

#: Bumped whenever any record below or in the model changes shape.
LAYOUT_VERSION = 8
MAGIC = 0x6E6574715F74786D  # "netq_txm"

FieldSpec = tuple  # (name, doc) or (name, count, doc)


class Record:
    """A struct of int64 words; ``rec.<field>`` is the field's word index.

    ``fields`` is a sequence of ``(name, doc)`` or ``(name, count, doc)``
    (an inline array of ``count`` words).  The doc says what the field is and
    which lock protects it.
    """

    def __init__(self, name: str, fields: Sequence[FieldSpec], *, pad: bool = True) -> None:
        self.name = name
        self.docs: dict[str, str] = {}
        self.counts: dict[str, int] = {}
        names, formats, offsets = [], [], []
        word = 0
        for spec in fields:
            if len(spec) == 2:
                fname, doc = spec
                count = 1
            else:
                fname, count, doc = spec
            if hasattr(self, fname) or fname in self.docs:
                raise ValueError(f"{name}.{fname} declared twice")
            setattr(self, fname, word)
            self.docs[fname] = doc
            self.counts[fname] = count
            names.append(fname)
            formats.append(("<i8", (count,)) if count > 1 else "<i8")
            offsets.append(word * WORD)
            word += count
        if pad:
            word = -(-word // WORDS_PER_LINE) * WORDS_PER_LINE
        #: record size in 64-bit words
        self.words = word
        self.dtype = np.dtype(
            {"names": names, "formats": formats, "offsets": offsets, "itemsize": word * WORD}
        )

    def __repr__(self) -> str:
        return f"Record({self.name}, {self.words} words)"

    def describe(self) -> str:
        """One line per field: index, name, doc (for docs and debugging)."""
        return "\n".join(
            f"  [{getattr(self, n):3d}] {n}{'[%d]' % self.counts[n] if self.counts[n] > 1 else ''}: {d}"
            for n, d in self.docs.items()
        )


HEADER = Record(
    "header",
    [
        ("magic", "MAGIC; written once by the creator"),
        ("version", "LAYOUT_VERSION; written once"),
        ("digest", "low 63 bits of the section table's sha1; written once"),
        ("size", "segment size in bytes; written once"),
    ],
)


@dataclass(frozen=True)
class Section:
    """A named array placed in a layout; offsets in 64-bit words."""

    name: str
    offset: int  # word index of element 0
    count: int
    record: Record | None  # None: a raw int64 array of shape ``shape``
    shape: tuple[int, ...]

    @property
    def stride(self) -> int:
        """Words per element (record) or per leading-axis row (raw)."""
        if self.record is not None:
            return self.record.words
        return int(np.prod(self.shape[1:], dtype=np.int64)) if len(self.shape) > 1 else 1

    @property
    def words(self) -> int:
        return self.stride * self.count

    def base(self, i: int = 0) -> int:
        """Word index of element ``i`` (record) or row ``i`` (raw)."""
        if not 0 <= i < self.count:
            raise IndexError(f"{self.name}[{i}] out of range (0..{self.count - 1})")
        return self.offset + i * self.stride


class Layout:
    """Places sections in one segment; build it, then :meth:`freeze`."""

    def __init__(self) -> None:
        self.sections: dict[str, Section] = {}
        self._next = 0
        self.add("header", HEADER, 1)

    def add(self, name: str, record: Record, count: int) -> Section:
        if count < 0:
            raise ValueError(f"section {name}: negative count")
        sec = Section(name, self._next, count, record, (count,))
        return self._place(sec)

    def add_raw(self, name: str, shape: Iterable[int]) -> Section:
        shape = tuple(int(s) for s in shape)
        if not shape or any(s < 0 for s in shape):
            raise ValueError(f"section {name}: bad shape {shape}")
        sec = Section(name, self._next, shape[0], None, shape)
        return self._place(sec)

    def _place(self, sec: Section) -> Section:
        if sec.name in self.sections:
            raise ValueError(f"section {sec.name} declared twice")
        self.sections[sec.name] = sec
        end = sec.offset + sec.words
        self._next = -(-end // WORDS_PER_LINE) * WORDS_PER_LINE
        return sec

    def __getitem__(self, name: str) -> Section:
        return self.sections[name]

    @property
    def size(self) -> int:
        """Segment size in bytes (at least one page)."""
        return max(self._next * WORD, 4096)

    def digest(self) -> int:
        h = hashlib.sha1()
        h.update(str(LAYOUT_VERSION).encode())
        for s in self.sections.values():
            rec = s.record.dtype.descr if s.record is not None else "raw"
            h.update(f"{s.name}:{s.offset}:{s.count}:{s.shape}:{rec};".encode())
        return int.from_bytes(h.digest()[:8], "little") & (2**63 - 1)

    # -- views ---------------------------------------------------------------
    def array(self, buf, name: str) -> np.ndarray:
        """A numpy view (no copy) of section ``name`` over ``buf``."""
        s = self.sections[name]
        if s.record is not None:
            return np.frombuffer(buf, dtype=s.record.dtype, count=s.count, offset=s.offset * WORD)
        n = int(np.prod(s.shape, dtype=np.int64))
        return np.frombuffer(buf, dtype=np.int64, count=n, offset=s.offset * WORD).reshape(s.shape)

    def stamp(self, words: memoryview) -> None:
        """Write the header of a freshly created segment."""
        h = self.sections["header"].offset
        words[h + HEADER.magic] = MAGIC
        words[h + HEADER.version] = LAYOUT_VERSION
        words[h + HEADER.digest] = self.digest()
        words[h + HEADER.size] = self.size

    def check(self, words: memoryview) -> None:
        """Raise if the segment was not written with this very layout."""
        h = self.sections["header"].offset
        if words[h + HEADER.magic] != MAGIC:
            raise ValueError("not a netq segment (bad magic)")
        if words[h + HEADER.version] != LAYOUT_VERSION:
            raise ValueError(
                f"layout version {words[h + HEADER.version]} != {LAYOUT_VERSION}"
            )
        if words[h + HEADER.digest] != self.digest():
            raise ValueError("segment layout differs from this process's layout")
