"""pfifo: a single tail-drop FIFO of ``limit`` packets (net/sched/sch_fifo.c).

Like pfifo_fast it is work-conserving, and the kernel sets TCQ_F_CAN_BYPASS on
it too (fifo_init, since 3.x), so an empty pfifo also takes the bypass.
"""

from __future__ import annotations

from ..core.netdevice import NET_XMIT_DROP, NET_XMIT_SUCCESS
from ..core.skbuff import SkBuff
from ..kstructs import QDISC, TCQ_F_CAN_BYPASS
from .sch_generic import Qdisc, Qdisc_ops, fifo_reset, register_qdisc


def pfifo_enqueue(skb: SkBuff, q: Qdisc) -> int:
    """Tail-enqueue while qlen < limit, else drop.  Under root_lock."""
    f = q.f
    if f[QDISC.qlen] < f[QDISC.limit]:
        q.bands[0].produce_from(skb)
        return NET_XMIT_SUCCESS
    return NET_XMIT_DROP


def pfifo_dequeue(q: Qdisc) -> tuple | None:
    return q.bands[0].consume()


def pfifo_peek(q: Qdisc) -> tuple | None:
    b = q.bands[0]
    return tuple(int(x) for x in b.peek_batch(1)[0]) if len(b) else None


pfifo_qdisc_ops = register_qdisc(
    Qdisc_ops(
        "pfifo", pfifo_enqueue, pfifo_dequeue, pfifo_peek, fifo_reset, static_flags=TCQ_F_CAN_BYPASS
    )
)
