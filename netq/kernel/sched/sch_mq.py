"""mq: the classful multiqueue root (net/sched/sch_mq.c).

mq has no enqueue or dequeue of its own: mq_attach grafts one child qdisc
(the default, pfifo_fast) onto each TX queue, and senders reach the child
through ``txq->qdisc``.  Each child has its own root_lock and busylock, which
is why a multi-queue device scales: with XPS 1:1 a CPU only ever takes its
own queue's locks.  mq's own statistics are the sum of its children's
(mq_dump), computed when reported.
"""

from __future__ import annotations

from ..kstructs import QDISC
from ..stddef import NULL
from .sch_generic import Qdisc, Qdisc_ops, register_qdisc

mq_qdisc_ops = register_qdisc(Qdisc_ops("mq", NULL, NULL, None, None))


def mq_dump(q: Qdisc) -> dict:
    """Sum the children's counters, as mq_dump does for `tc -s qdisc show`."""
    keys = ("qlen", "backlog", "bytes", "packets", "drops", "requeues", "overlimits")
    return {k: sum(c.f[getattr(QDISC, k)] for c in q.children) for k in keys}
