"""shm.region's record views: the compiled Words type behaves as the
memoryview it replaces (shm.native), and both block unmapping while alive."""

from __future__ import annotations

import numpy as np
import pytest

from shm import native
from shm.layout import Layout
from shm.region import Region

BACKENDS = [
    pytest.param(
        True,
        id="native",
        marks=pytest.mark.skipif(native.WordsOps is None, reason="no compiled record type"),
    ),
    pytest.param(False, id="python"),
]


@pytest.fixture(params=BACKENDS)
def use_native(request):
    return request.param


def make_region(owner, use_native: bool) -> Region:
    layout = Layout()
    layout.add_raw("rows", (3, 5))
    return Region(owner, "region", layout, native=use_native)


def test_record_view_type_follows_the_backend(owner, use_native):
    region = make_region(owner, use_native)
    v = region.section_words("rows", 1)
    assert (type(v) is native.WordsOps) == use_native
    assert (type(v) is memoryview) == (not use_native)
    region.close()


def test_words_read_write_as_memoryview(owner, use_native):
    """Index reads and writes (negative indices, any int64, numpy ints,
    bools), bounds, slices, iteration, tolist, the buffer protocol: what a
    record view is used for, the same on both backends, on shared words."""
    region = make_region(owner, use_native)
    rows = [region.section_words("rows", i) for i in range(3)]
    span = region.span_words("rows")
    v = rows[1]
    assert len(v) == 5 and len(span) == 15
    v[0] = 7
    v[-1] = -(2**63)
    v[1] = 2**63 - 1
    v[2] = np.int64(-3)
    v[3] = True
    v[0] += 5
    assert [v[i] for i in range(5)] == [12, 2**63 - 1, -3, 1, -(2**63)]
    assert v[-5] == 12
    # the same words through the span, a numpy view and the other rows
    assert span[5:10].tolist() == v.tolist() == list(v)
    assert np.frombuffer(v, dtype=np.int64).tolist() == v.tolist()
    assert rows[0].tolist() == [0] * 5 and rows[2].tolist() == [0] * 5
    v[1:3] = memoryview(np.array([4, 5], dtype=np.int64)).cast("B").cast("q")
    assert v[0:4].tolist() == [12, 4, 5, 1]
    with pytest.raises(IndexError):
        v[5]
    with pytest.raises(IndexError):
        v[-6] = 1
    with pytest.raises((OverflowError, ValueError)):
        v[0] = 2**63
    with pytest.raises(TypeError):
        v[0] = "x"
    assert v[0] == 12  # a refused write changed nothing
    del span, rows, v
    region.close()


def test_close_releases_views_and_a_released_view_refuses(owner, use_native):
    region = make_region(owner, use_native)
    v = region.section_words("rows", 0)
    v[0] = 1
    region.close()
    assert region.mm.closed
    with pytest.raises(ValueError):
        v[0]
    with pytest.raises(ValueError):
        v[0] = 2
    with pytest.raises(ValueError):
        v[0:2]


def test_a_live_numpy_view_blocks_close(owner, use_native):
    """A consumer's buffer export of a record view keeps the mapping: the
    region refuses to unmap under it, on both backends."""
    region = make_region(owner, use_native)
    v = region.section_words("rows", 2)
    arr = np.frombuffer(v, dtype=np.int64)
    with pytest.raises(BufferError):
        region.close()
    del arr
    region.close()
    assert region.mm.closed
