"""Routing's TOS map (include/net/route.h, net/ipv4/route.c).

IP sets ``skb->priority`` of a socket's packets from the socket's TOS byte
(``sk->sk_priority`` follows ``IP_TOS`` through ``rt_tos2priority`` in
ip_setsockopt / ip_sock_set_tos).  netq applies it when a traffic group has
a ``tos``: the group's sockets then send at ``rt_tos2priority(tos)``, which
overrides the group's ``priority``.
"""

from __future__ import annotations

#: ip_tos2prio[16] of net/ipv4/route.c: IPTOS_TOS(tos) >> 1 -> TC_PRIO_*
#: (0 BESTEFFORT, 2 BULK, 4 INTERACTIVE_BULK, 6 INTERACTIVE; the odd entries,
#: ECN_OR_COST(x) in the kernel's table, are TC_PRIO_x too)
IP_TOS2PRIO = (0, 0, 0, 0, 2, 2, 2, 2, 6, 6, 6, 6, 4, 4, 4, 4)

#: IPTOS_TOS_MASK of include/uapi/linux/ip.h
IPTOS_TOS_MASK = 0x1E


def rt_tos2priority(tos: int) -> int:
    """include/net/route.h rt_tos2priority(): ``ip_tos2prio[IPTOS_TOS(tos) >> 1]``."""
    return IP_TOS2PRIO[(tos & IPTOS_TOS_MASK) >> 1]
