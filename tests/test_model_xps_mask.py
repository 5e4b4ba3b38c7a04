"""netif_set_xps_queue refuses a mask naming a CPU that does not exist.

netq is stricter than the kernel here (see netq.kernel.core.xps): the error
is a MaskError carrying the errno the kernel's bitmap_parse gives a CPU bit
at or above nmaskbits, EOVERFLOW, like every other MaskError.
"""

from __future__ import annotations

import errno
from types import SimpleNamespace

import pytest

from netq.kernel.core.bitmap import MaskError
from netq.kernel.core.xps import netif_set_xps_queue


def test_mask_beyond_the_cpus_is_a_mask_error_with_eoverflow() -> None:
    net = SimpleNamespace(ncpus=2, xps=[[[0] * 4, [0] * 4]])
    dev = SimpleNamespace(name="eth0", index=0, num_tx_queues=2)
    with pytest.raises(MaskError, match="names CPUs beyond 0-1") as e:
        netif_set_xps_queue(net, dev, 0b100, 0)
    assert e.value.errno == errno.EOVERFLOW
    assert net.xps == [[[0] * 4, [0] * 4]]  # nothing written


def test_mask_within_the_cpus_sets_their_maps() -> None:
    net = SimpleNamespace(ncpus=2, xps=[[[0] * 4, [0] * 4]])
    dev = SimpleNamespace(name="eth0", index=0, num_tx_queues=2)
    netif_set_xps_queue(net, dev, 0b10, 1)
    assert net.xps[0] == [[0, 0, 0, 0], [1, 1, 0, 0]]
