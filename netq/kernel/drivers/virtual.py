"""Drivers of virtual (noqueue) devices: their xmit re-enters dev_queue_xmit
on the lower device, which is how a stack of them — or a loop — nests the
per-CPU xmit_recursion counter.

``vlan_dev_hard_start_xmit`` (net/8021q/vlan_dev.c) sets skb->dev to the real
device and returns what dev_queue_xmit returned, so a drop below reaches the
sender (dev_xmit_complete() still treats it as consumed: it was freed below).
A tunnel (ipip_tunnel_xmit → ip_tunnel_xmit → iptunnel_xmit → ip_local_out →
dev_queue_xmit) always returns NETDEV_TX_OK and counts a failure in its own
tx_errors.  The encapsulation header is not added (lengths are kept so byte
counts match end to end).
"""

from __future__ import annotations

from ..core.dev import dev_queue_xmit
from ..core.netdevice import NETDEV_TX_OK, NetDevice
from ..core.skbuff import SkBuff


def vlan_dev_hard_start_xmit(skb: SkBuff, dev: NetDevice) -> int:
    skb.dev = dev.lower
    return dev_queue_xmit(skb)


def ip_tunnel_xmit(skb: SkBuff, dev: NetDevice) -> int:
    skb.dev = dev.lower
    dev_queue_xmit(skb)
    return NETDEV_TX_OK


def select_queue_by_priority(dev: NetDevice, skb: SkBuff) -> int:
    """An ndo_select_queue hook: skb->priority modulo the real queue count
    (as a driver with hardware priority queues might)."""
    return skb.priority % dev.real_num_tx_queues
