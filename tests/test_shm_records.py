"""The shared-memory records keep their exact shape.

Every record's word indices, size, padding, dtype and field docs are pinned
here: a process built from one revision must read another's segment the same
way, and the compiled helper (shm.native) bakes LOCK/STAT indices into C.  The
pins were taken from the records as they stood before they became class
declarations (``class X(Record, name=...)``), so this test also proves that
conversion changed no byte.

Changing a record on purpose: bump ``shm.layout.LAYOUT_VERSION`` and update
the pin below (the failure message prints the new digest).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from netq.kernel import kstructs
from shm import layout, lockrec, ring, ringrec
from shm.layout import WORD, Layout, Record, field

#: record -> (C name, words, sha1 of its canonical description)
PINNED = {
    "HEADER": ("header", 8, "8391d012fbfb09a68c7af7ac9065a77f406a13c3"),
    "LOCK": ("spinlock", 72, "fb7d335645afffa2d6edb97bce428ce47a4c0a50"),
    "STAT": ("lock_class_stats", 16, "7a2c21210d5dc41d3dc898814ea56578fb9ba20e"),
    "WAITER": ("lock_waiter", 8, "73e1c19ccff6b19309ed77ea794ecc8cba209204"),
    "DESC": ("tx_desc", 8, "3e676bc63deb5a8098ad6b5ac2b9dc049011568a"),
    "RING": ("ring", 16, "bae290f865c464484630288d38ac9d9cc9945958"),
    "RUNCTL": ("runctl", 8, "a2ec8e960a1f91cd8ff5f581ffe0bc6673b7cac7"),
    "SOFTNET": ("softnet_data", 40, "21d5e1b7caedb8219f9470f34f67550e19d5b199"),
    "NETDEV": ("net_device", 56, "0ebb9733462db62f0f765993f684ca1cdc4a65a2"),
    "NETDEV_QUEUE": ("netdev_queue", 32, "70a1db0845519ae33f264c314e68260d1f9b0780"),
    "QDISC": ("Qdisc", 2088, "9d2632e778c5a5134689fc996ebbf46b543f7895"),
    "FQ_FLOW": ("fq_flow", 4, "8e858129116da6afa3d261ae3c66f23c2da89365"),
    "DEFER_NODE": ("defer_node", 10, "2146d4134ee642166e54b84a725c54259848e0f3"),
    "SOCK": ("sock", 24, "ef9e5c9d84a0668272d2e9bf51f283496012a071"),
    "NIC": ("nic", 16, "e3f238c237f65f87fa45907a0bacb1de6601027f"),
}
MODULES = (layout, lockrec, ringrec, kstructs)


def records() -> dict[str, type[Record]]:
    """Every record declared in the substrate and the kernel model, by name."""
    out: dict[str, type[Record]] = {}
    for mod in MODULES:
        for k, v in vars(mod).items():
            if isinstance(v, type) and issubclass(v, Record) and v is not Record:
                out[k] = v
    return out


def canon(r: type[Record]) -> str:
    """Name, size, dtype (offsets and padding) and every field's index, count, doc."""
    fields = [(n, getattr(r, n), r.counts[n], r.docs[n]) for n in r.docs]
    return repr((r.name, r.words, r.dtype.itemsize, r.dtype.descr, fields))


def test_every_record_is_pinned() -> None:
    assert sorted(records()) == sorted(PINNED)


@pytest.mark.parametrize("name", sorted(PINNED))
def test_record_shape_unchanged(name: str) -> None:
    r = records()[name]
    cname, words, digest = PINNED[name]
    assert (r.name, r.words) == (cname, words)
    assert r.dtype.itemsize == words * WORD
    got = hashlib.sha1(canon(r).encode()).hexdigest()
    assert got == digest, f"{name} changed shape: new digest {got} (bump LAYOUT_VERSION)"


def test_some_indices_by_hand() -> None:
    """A few indices written out, so a failure above is easy to read."""
    Q, L = kstructs.QDISC, lockrec.LOCK
    assert (Q.ops, Q.gso_skb, Q.runs, Q.fq_flows_plimit) == (0, 21, 2069, 2087)
    assert Q.counts["gso_skb"] == 8 * kstructs.GSO_SKB_MAX
    assert (L.owner_cpu, L.q_cpu, L.words) == (0, 6, 72)
    assert (ringrec.RING.prod, ringrec.RING.wake, ringrec.RING.cons) == (0, 1, 8)  # 2 lines
    assert (kstructs.DEFER_NODE.next, kstructs.DEFER_NODE.state) == (8, 9)  # packed
    assert kstructs.NETDEV.prio_tc_map == 38
    assert kstructs.SOFTNET.generated_at_stop == 29
    assert layout.HEADER.size == 3


def test_layout_places_records_as_before() -> None:
    """Section offsets and the segment size of a layout holding every record."""
    lay = Layout()
    for k in ("LOCK", "STAT", "WAITER"):
        lay.add(k, getattr(lockrec, k), 3)
    ring.ring_sections(lay, "r", 2, 16)
    for k in (
        "RUNCTL",
        "SOFTNET",
        "NETDEV",
        "NETDEV_QUEUE",
        "QDISC",
        "FQ_FLOW",
        "DEFER_NODE",
        "SOCK",
        "NIC",
    ):
        lay.add(k, getattr(kstructs, k), 5)
    lay.add_raw("raw", (3, 7))
    assert lay.size == 96064
    assert {k: s.offset for k, s in lay.sections.items()} == {
        "header": 0,
        "LOCK": 8,
        "STAT": 224,
        "WAITER": 272,
        "r_idx": 296,
        "r_desc": 328,
        "RUNCTL": 584,
        "SOFTNET": 624,
        "NETDEV": 824,
        "NETDEV_QUEUE": 1104,
        "QDISC": 1264,
        "FQ_FLOW": 11704,
        "DEFER_NODE": 11728,
        "SOCK": 11784,
        "NIC": 11904,
        "raw": 11984,
    }


def test_field_is_its_word_index_and_an_int() -> None:
    class Demo(Record, name="demo"):
        a = field("first; owner")
        b = field("an inline array; owner", count=3)
        c = field("after the array; owner")

    assert (Demo.a, Demo.b, Demo.c) == (0, 1, 4)
    assert all(type(getattr(Demo, n)) is int for n in "abc")
    assert Demo.words == 8  # padded to one cache line
    assert Demo.dtype.fields is not None and Demo.dtype.fields["b"][0] == np.dtype(("<i8", (3,)))
    assert Demo.counts == {"a": 1, "b": 3, "c": 1}
    assert Demo.describe().splitlines()[1] == "  [  1] b[3]: an inline array; owner"


def test_packed_record_is_not_padded() -> None:
    class Packed(Record, name="packed", pad=False):
        x = field("x")
        y = field("y", count=2)

    assert Packed.words == 3 and Packed.dtype.itemsize == 24


def test_field_declared_twice_is_refused() -> None:
    with pytest.raises(
        ValueError, match=r"record twice: a field is declared twice .*field\('first'\)"
    ):

        class Twice(Record, name="twice"):
            a = field("first")
            a = field("again")  # noqa: PIE794


def test_field_colliding_with_record_attribute_is_refused() -> None:
    with pytest.raises(ValueError, match="words"):

        class Bad(Record, name="bad"):
            words = field("clashes with Record.words")


def test_record_without_fields_is_refused() -> None:
    with pytest.raises(ValueError, match="no fields"):

        class Empty(Record, name="empty"):
            pass


def test_byte_offset_is_the_word_index_in_bytes() -> None:
    lay = Layout()
    sec = lay.add("locks", lockrec.LOCK, 3)
    raw = lay.add_raw("grid", (4, 5))
    assert lay.byte_offset("locks") == sec.offset * WORD == 64  # after the header line
    assert lay.byte_offset("locks", 2) == (sec.offset + 2 * lockrec.LOCK.words) * WORD
    assert lay.byte_offset("grid", 3) == raw.byte_offset(3) == (raw.offset + 3 * 5) * WORD
    with pytest.raises(IndexError, match=r"locks\[3\] out of range"):
        lay.byte_offset("locks", 3)


def test_field_outside_a_record_body_is_refused_by_the_next_record() -> None:
    field("stray")
    with pytest.raises(ValueError, match=r"field\('stray'\) is not in the record"):

        class After(Record, name="after"):
            a = field("a")

    class Clean(Record, name="clean"):  # the stray declaration is forgotten
        a = field("a")

    assert Clean.a == 0
