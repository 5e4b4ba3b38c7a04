"""XPS maps: what writing /sys/class/net/DEV/queues/tx-N/xps_cpus does.

``xps_cpus_store`` (net/core/net-sysfs.c) parses the mask with bitmap_parse
and calls ``netif_set_xps_queue`` (net/core/dev.c), which, for every CPU,
adds queue N to that CPU's map if the CPU is in the mask and removes it if
not.  A CPU's map lists queues in the order they were added; removal moves
the last entry into the hole (``remove_xps_queue``).  Maps live in shared
memory: ``xps[dev][cpu]`` = [len, queue0, queue1, ...]; written under rtnl
(the control process), read locklessly by senders (RCU in the kernel).

``xps_rxqs`` (4.18, commit 8af2c06ff4b1) does the same keyed by RX queue:
tx-N/xps_rxqs names the RX queues whose sockets (``sk_rx_queue_mapping``)
should transmit on queue N; ``xps_rxqs[dev][rxq]`` has the same shape.

netq is stricter than the kernel in one respect: a mask naming a CPU that
does not exist is rejected (the kernel silently ignores offline CPUs), since
in an experiment it is always a mistake.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from ..kstructs import MAX_TX_QUEUES
from .bitmap import MaskError, bitmap_parse, cpumask_format

if TYPE_CHECKING:
    from ..net_namespace import Net
    from .netdevice import NetDevice


def netif_set_xps_queue(
    net: Net, dev: NetDevice, mask: int, index: int, rxqs: bool = False
) -> None:
    """Make queue ``index`` of ``dev`` the XPS choice of exactly the CPUs in
    ``mask`` (``rxqs``: of the sockets that received on the RX queues in
    ``mask``: __netif_set_xps_queue with is_rxqs_map).  Called under rtnl
    (control only)."""
    if not 0 <= index < dev.num_tx_queues:
        raise ValueError(f"{dev.name}: no TX queue {index}")
    maps = net.xps_rxqs[dev.index] if rxqs else net.xps[dev.index]
    nbits = dev.num_rx_queues if rxqs else net.ncpus
    what = "RX queues" if rxqs else "CPUs"
    if mask >> nbits:
        raise MaskError(f"mask {mask:#x} names {what} beyond 0-{nbits - 1}", errno.EOVERFLOW)
    for cpu in range(nbits):
        m = maps[cpu]
        n = m[0]
        queues = [m[1 + i] for i in range(n)]
        if mask >> cpu & 1:
            if index not in queues:
                if n >= MAX_TX_QUEUES:
                    raise ValueError("XPS map full")
                m[1 + n] = index
                m[0] = n + 1
        elif index in queues:
            pos = queues.index(index)
            m[1 + pos] = m[n]  # remove_xps_queue: the last entry fills the hole
            m[0] = n - 1


def xps_cpus_store(net: Net, dev: NetDevice, index: int, text: str) -> None:
    """Write ``text`` to tx-``index``/xps_cpus: parse, then set the maps."""
    mask = bitmap_parse(text, net.ncpus)
    netif_set_xps_queue(net, dev, mask, index)


def xps_cpus_show(net: Net, dev: NetDevice, index: int) -> str:
    """What reading tx-``index``/xps_cpus prints."""
    mask = 0
    for cpu in range(net.ncpus):
        m = net.xps[dev.index][cpu]
        if index in [m[1 + i] for i in range(m[0])]:
            mask |= 1 << cpu
    return cpumask_format(mask, net.ncpus)


def xps_rxqs_store(net: Net, dev: NetDevice, index: int, text: str) -> None:
    """Write ``text`` to tx-``index``/xps_rxqs (4.18+): parse, set the maps."""
    mask = bitmap_parse(text, dev.num_rx_queues)
    netif_set_xps_queue(net, dev, mask, index, rxqs=True)


def xps_rxqs_show(net: Net, dev: NetDevice, index: int) -> str:
    """What reading tx-``index``/xps_rxqs prints."""
    mask = 0
    for rxq in range(dev.num_rx_queues):
        m = net.xps_rxqs[dev.index][rxq]
        if index in [m[1 + i] for i in range(m[0])]:
            mask |= 1 << rxq
    return cpumask_format(mask, dev.num_rx_queues)
