"""The traffic generator: TOS → skb->priority, packet budgets, per-flow sequence."""

from __future__ import annotations

from netq.kernel.sched.sch_generic import prio2band
from workers.cpu import rt_tos2priority


def test_tos_to_priority_as_ip_does():
    # IPTOS_LOWDELAY -> TC_PRIO_INTERACTIVE, THROUGHPUT -> BULK,
    # RELIABILITY/MINCOST -> BESTEFFORT (net/ipv4/route.c ip_tos2prio)
    assert rt_tos2priority(0x10) == 6
    assert rt_tos2priority(0x08) == 2
    assert rt_tos2priority(0x04) == 0
    assert rt_tos2priority(0x02) == 0
    assert rt_tos2priority(0x18) == 4
    # and pfifo_fast puts interactive traffic in band 0, bulk in band 2
    assert prio2band[rt_tos2priority(0x10)] == 0
    assert prio2band[rt_tos2priority(0x08)] == 2
