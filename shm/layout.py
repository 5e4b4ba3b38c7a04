"""Shared-memory layouts, declared once as numpy structured dtypes.

A :class:`Record` is a C-like struct of signed 64-bit words, padded to whole
64-byte cache lines (unless it is a packed element such as a descriptor) so
that per-CPU hot fields never share a line with another CPU's.  A record is a
class; each field is declared in its body with one :func:`field` line saying
what it means and which lock protects it, and the record exposes the field's
*word index* as a class attribute of type ``int`` (``QDISC.qlen``),
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
import mmap
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, cast

import numpy as np

CACHELINE = 64
WORD = 8
WORDS_PER_LINE = CACHELINE // WORD

#: Bumped whenever any record below or in the model changes shape.
LAYOUT_VERSION = 15
MAGIC = 0x6E6574715F74786D  # "netq_txm"


class _Field:
    """A field as declared in a record's body, before the record is built."""

    __slots__ = ("count", "doc")

    def __init__(self, doc: str, count: int) -> None:
        self.doc = doc
        self.count = count


#: fields made by :func:`field` and not yet claimed by a record's class body
_pending: list[_Field] = []


def field(doc: str, *, count: int = 1) -> int:
    """Declare one field of a :class:`Record` (in its class body).

    ``doc`` says what the field is and which lock protects it; ``count > 1``
    makes an inline array of ``count`` words.  The record replaces the
    declaration with the field's word index, hence the ``int`` return type:
    to a type checker, ``SOFTNET.xmit_recursion`` is an ``int`` and a
    misspelt field an error.
    """
    if count < 1:
        raise ValueError(f"field count must be >= 1, got {count}")
    f = _Field(doc, count)
    _pending.append(f)
    return cast(int, f)


class Record:
    """A struct of int64 words, declared as a class; ``Rec.<field>`` is the
    field's word index.

    Declare each field in the class body with :func:`field`, in memory order::

        class SOFTNET(Record, name="softnet_data"):
            xmit_recursion = field("per-CPU xmit_recursion; owner")
            q_cpu = field("fifo: ring of waiting CPUs; under the guard", count=64)

    ``name`` is the C struct's name; ``pad=False`` leaves a packed element
    (a descriptor) unpadded.  A record is a declaration: it is used as the
    class itself and never instantiated.
    """

    #: the C struct's name
    name: ClassVar[str]
    #: record size in 64-bit words
    words: ClassVar[int]
    #: the numpy structured dtype of one record
    dtype: ClassVar[np.dtype[np.void]]
    #: field name -> what it is and which lock protects it, in memory order
    docs: ClassVar[dict[str, str]]
    #: field name -> words (1, or the length of an inline array)
    counts: ClassVar[dict[str, int]]

    def __init_subclass__(cls, *, name: str, pad: bool = True, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        claimed = [(k, v) for k, v in cls.__dict__.items() if isinstance(v, _Field)]
        ids = {id(v) for _, v in claimed}
        lost = [f for f in _pending if id(f) not in ids]
        _pending.clear()
        if lost:
            # the class namespace keeps only the last assignment to a name
            raise ValueError(
                f"record {name}: a field is declared twice (or field() was called "
                f"outside a record's body): field({lost[0].doc!r}) is not in the record"
            )
        if not claimed:
            raise ValueError(f"record {name} has no fields")
        cls.name = name
        cls.docs = {}
        cls.counts = {}
        names: list[str] = []
        formats: list[Any] = []
        offsets: list[int] = []
        word = 0
        for fname, f in claimed:
            if hasattr(Record, fname) or fname in Record.__annotations__:
                raise ValueError(f"{name}.{fname} collides with Record.{fname}")
            setattr(cls, fname, word)
            cls.docs[fname] = f.doc
            cls.counts[fname] = f.count
            names.append(fname)
            formats.append(("<i8", (f.count,)) if f.count > 1 else "<i8")
            offsets.append(word * WORD)
            word += f.count
        if pad:
            word = -(-word // WORDS_PER_LINE) * WORDS_PER_LINE
        cls.words = word
        cls.dtype = np.dtype(
            {"names": names, "formats": formats, "offsets": offsets, "itemsize": word * WORD}
        )

    @classmethod
    def describe(cls) -> str:
        """One line per field: index, name, doc (for docs and debugging)."""
        lines = []
        for n, d in cls.docs.items():
            arr = f"[{cls.counts[n]}]" if cls.counts[n] > 1 else ""
            lines.append(f"  [{getattr(cls, n):3d}] {n}{arr}: {d}")
        return "\n".join(lines)


class HEADER(Record, name="header"):
    magic = field("MAGIC; written once by the creator")
    version = field("LAYOUT_VERSION; written once")
    digest = field("low 63 bits of the section table's sha1; written once")
    size = field("segment size in bytes; written once")


@dataclass(frozen=True)
class Section:
    """A named array placed in a layout; offsets in 64-bit words."""

    name: str
    offset: int  # word index of element 0
    count: int
    record: type[Record] | None  # None: a raw int64 array of shape ``shape``
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

    def byte_offset(self, i: int = 0) -> int:
        """Byte offset in the segment of element ``i`` (record) or row ``i``
        (raw): what ``struct.pack_into`` and ``np.frombuffer`` take."""
        return self.base(i) * WORD


class Layout:
    """Places sections in one segment; build it, then :meth:`freeze`."""

    def __init__(self) -> None:
        self.sections: dict[str, Section] = {}
        self._next = 0
        self.add("header", HEADER, 1)

    def add(self, name: str, record: type[Record], count: int) -> Section:
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

    def byte_offset(self, name: str, i: int = 0) -> int:
        """Byte offset of element (or row) ``i`` of section ``name``."""
        return self.sections[name].byte_offset(i)

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
    def array(self, buf: mmap.mmap | bytearray | memoryview, name: str) -> np.ndarray:
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
            raise ValueError(f"layout version {words[h + HEADER.version]} != {LAYOUT_VERSION}")
        if words[h + HEADER.digest] != self.digest():
            raise ValueError("segment layout differs from this process's layout")
