"""shm.ring: descriptors pass between processes with no loss, duplicate or reorder."""

from __future__ import annotations

import numpy as np
import pytest

from shm import native
from shm.layout import Layout
from shm.region import Region
from shm.ring import DESC_WORDS, Ring, ring_sections
from tests.shmutil import join_all, start

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


def make_ring(owner, size: int, use_native: bool = True):
    layout = Layout()
    ring_sections(layout, "r", 1, size)
    region = Region(owner, "ring", layout, native=use_native)
    return region, Ring(region, "r", 0)


def test_size_must_be_power_of_two():
    with pytest.raises(ValueError, match="power of two"):
        ring_sections(Layout(), "r", 1, 1000)


def test_single_and_batch_wrap(owner, use_native):
    region, ring = make_ring(owner, 8, use_native)
    # the compiled ring type with the native helper, the Python methods without
    assert (ring._ops is not None) == (use_native and native.RingOps is not None)
    for i in range(6):
        assert ring.produce((0, i, 1, i, 100, 0, 0, 0))
    assert [ring.consume()[1] for _ in range(5)] == [0, 1, 2, 3, 4]
    assert ring.used() == len(ring) == 1 and ring.free() == 7
    batch = np.arange(10 * DESC_WORDS, dtype=np.int64).reshape(10, DESC_WORDS)
    assert ring.produce_batch(batch) == 7  # 1 left + 7 free = full
    assert not ring.produce((0,) * 8)
    assert ring.free() == 0 and len(ring) == 8 and ring.used() == 8
    got = ring.consume_batch(100)
    assert got[0][1] == 5 and (got[1:] == batch[:7]).all()
    assert ring.consume() is None
    del ring, got
    region.close()


def test_million_descriptors_between_processes(owner, use_native):
    n = 1_000_000
    region, ring = make_ring(owner, 1024, use_native)

    def producer():
        r = Ring(region, "r", 0)
        seq = 0
        # alternate single descriptors and batches of 64
        while seq < n and seq < 2000:
            if r.produce((0, seq, 0, seq * 3, 0, 0, 0, 0)):
                seq += 1
        block = np.zeros((64, DESC_WORDS), dtype=np.int64)
        while seq < n:
            k = min(64, n - seq)
            block[:k, 1] = np.arange(seq, seq + k)
            block[:k, 3] = block[:k, 1] * 3
            put = r.produce_batch(block[:k])
            seq += put

    p = start(producer)
    expect = 0
    import time

    deadline = time.monotonic() + 60
    while expect < n and time.monotonic() < deadline:
        got = ring.consume_batch(256)
        if len(got):
            seqs = got[:, 1]
            assert (seqs == np.arange(expect, expect + len(got))).all(), (
                "loss, duplicate or reorder"
            )
            assert (got[:, 3] == seqs * 3).all(), "torn descriptor"
            expect += len(got)
    assert join_all([p], 10) == [0]
    assert expect == n
    del ring
    region.close()


def test_batch_of_any_layout(owner, use_native):
    """produce_batch takes what numpy gives it: int64 rows, other integer
    dtypes, a Fortran-ordered array; every word arrives."""
    region, ring = make_ring(owner, 64, use_native)
    a = np.arange(10 * DESC_WORDS, dtype=np.int64).reshape(10, DESC_WORDS)
    assert ring.produce_batch(a) == 10
    assert ring.produce_batch(a.astype(np.int32)) == 10
    assert ring.produce_batch(np.asfortranarray(a)) == 10
    got = ring.consume_batch(100)
    assert got.dtype == np.int64 and got.shape == (30, DESC_WORDS)
    assert all((got[k : k + 10] == a).all() for k in (0, 10, 20))
    del ring, got
    region.close()


def test_produce_from_copies_the_words_desc_gives(owner, use_native):
    """Ring.produce_from(skb) (the compiled helper reads the skb's slots,
    registered by netq.kernel.core.skbuff) stores exactly skb.desc(), with
    and without a socket (sk id -1)."""
    from netq.kernel.core.skbuff import SkBuff
    from netq.kernel.core.sock import Sock

    region, ring = make_ring(owner, 8, use_native)
    sk = Sock(5, memoryview(bytearray(8)).cast("q"), 0, 1, "udp", 7, 9)
    skbs = [
        SkBuff(1, 2, sk, 3, 1000, 6, 123456789, None, False, -1),
        SkBuff(0, 2**40, None, 0, 64, 0, 1, None),
    ]
    skbs[0].queue_mapping = 3
    for skb in skbs:
        assert ring.produce_from(skb)
        assert ring.consume() == skb.desc()
    if ring._ops is not None:
        with pytest.raises(TypeError):
            ring.produce_from(object())
    for _ in range(8):
        assert ring.produce_from(skbs[1])
    assert not ring.produce_from(skbs[1])  # full
    del ring
    region.close()
