"""shm.atomic: read-modify-writes from several processes lose nothing."""

from __future__ import annotations

import pytest

from shm import native
from shm.atomic import Atomics
from shm.layout import Layout
from shm.region import Region
from tests.shmutil import join_all, start

BACKENDS = [
    pytest.param(
        True,
        id="native",
        marks=pytest.mark.skipif(native.lib is None, reason=native.unavailable_reason),
    ),
    pytest.param(False, id="hashed-semaphores"),
]


@pytest.mark.parametrize("use_native", BACKENDS)
def test_concurrent_fetch_add_and_bits(owner, use_native):
    layout = Layout()
    layout.add_raw("w", (8,))
    region = Region(owner, "atomic", layout, native=use_native)
    at = Atomics(owner, region, native=use_native)
    assert at.backend == ("native" if use_native else "hashed-semaphores")
    base = layout["w"].offset
    nproc, iters = 3, 3000

    def worker(k, at=at):
        for _ in range(iters):
            at.fetch_add(base, 1)
            # each worker owns one bit of word 1: set/clear races with the others
            at.set_bit(base + 1, k)
            at.clear_bit(base + 1, k)
        at.set_bit(base + 2, k)

    assert join_all([start(worker, k) for k in range(nproc)], 60) == [0] * nproc
    w = region.words
    assert w[base] == nproc * iters
    assert w[base + 1] == 0
    assert w[base + 2] == (1 << nproc) - 1
    assert at.test_and_set_bit(base + 3, 5) is False
    assert at.test_and_set_bit(base + 3, 5) is True
    assert at.test_and_clear_bit(base + 3, 5) is True
    assert at.cmpxchg(base + 4, 0, 7) == 0 and w[base + 4] == 7
    assert at.cmpxchg(base + 4, 0, 9) == 7 and w[base + 4] == 7
    assert at.xchg(base + 4, 11) == 7 and w[base + 4] == 11
    del at, w, worker
    region.close()
