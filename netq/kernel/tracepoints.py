"""The kernel model's tracepoints: what a traced run records, and where.

Named after the kernel's own tracepoints where one exists (net:net_dev_queue,
net:net_dev_start_xmit, net:net_dev_xmit, qdisc:qdisc_dequeue,
irq:softirq_entry/exit, lock:contention_begin/end); the lock events are
:mod:`shm.trace`'s.  Each is recorded into the current process's log
(``percpu.this.trace``, None unless the run is traced: a tracepoint then
costs one attribute load and a test, like a disabled static key) as
``(timestamp, kind, a, b)``.  An skb is named by its socket and that
socket's sequence number, ``(sock, seq)``; a TX queue by its global index
(``NetdevQueue.index``).
"""

from __future__ import annotations

from shm.trace import (
    FIRST_USER_KIND,
    LOCK_ACQUIRED,
    LOCK_CONTENTION_BEGIN,
    LOCK_CONTENTION_END,
    LOCK_RELEASED,
    LOCK_TRYLOCK_FAILED,
)

#: dev_queue_xmit entered (net:net_dev_queue): a = sock, b = seq
NET_DEV_QUEUE = FIRST_USER_KIND
#: __qdisc_run begins (qdisc:qdisc_dequeue's run): a = qdisc id
QDISC_RUN_BEGIN = FIRST_USER_KIND + 1
#: __qdisc_run ends: a = qdisc id, b = skbs it sent
QDISC_RUN_END = FIRST_USER_KIND + 2
#: __dev_xmit_skb sent an skb through an empty qdisc: a = qdisc id, b = sock
QDISC_BYPASS = FIRST_USER_KIND + 3
#: the driver took an skb (net:net_dev_start_xmit): a = txq << 32 | sock, b = seq
NET_DEV_START_XMIT = FIRST_USER_KIND + 4
#: a TX queue stopped: a = txq, b = 0 by the driver (DRV_XOFF), 1 by BQL
QUEUE_STOP = FIRST_USER_KIND + 5
#: a TX queue woken: a = txq, b = 0 by the driver, 1 by BQL
QUEUE_WAKE = FIRST_USER_KIND + 6
#: BQL's limit after a completion changed it: a = txq, b = the new limit
BQL_LIMIT = FIRST_USER_KIND + 7
#: __do_softirq runs NET_TX (irq:softirq_entry / softirq_exit): a = passes
SOFTIRQ_ENTRY = FIRST_USER_KIND + 8
SOFTIRQ_EXIT = FIRST_USER_KIND + 9
#: a sender sleeps for send-buffer space / wakes up
WMEM_SLEEP = FIRST_USER_KIND + 10
WMEM_WAKE = FIRST_USER_KIND + 11
#: xmit_recursion cut a transmission: a = device index, b = depth
RECURSION_CUT = FIRST_USER_KIND + 12
#: the NIC's completion of a ring (its interrupt and TX clean): a = txq, b = skbs
NIC_IRQ = FIRST_USER_KIND + 13
#: an skb left on the wire (net:net_dev_xmit): a = txq << 32 | sock, b = seq;
#: the timestamp is its wire finish
NET_DEV_XMIT = FIRST_USER_KIND + 14
#: a defer_list splice (6.19): a = qdisc id, b = skbs spliced
DEFER_SPLICE = FIRST_USER_KIND + 15

#: every kind's name, as the trace shows it
NAMES = {
    LOCK_CONTENTION_BEGIN: "lock:contention_begin",
    LOCK_CONTENTION_END: "lock:contention_end",
    LOCK_ACQUIRED: "lock:acquired",
    LOCK_RELEASED: "lock:released",
    LOCK_TRYLOCK_FAILED: "lock:trylock_failed",
    NET_DEV_QUEUE: "net:net_dev_queue",
    QDISC_RUN_BEGIN: "qdisc run",
    QDISC_RUN_END: "qdisc run end",
    QDISC_BYPASS: "qdisc bypass",
    NET_DEV_START_XMIT: "net:net_dev_start_xmit",
    QUEUE_STOP: "queue stop",
    QUEUE_WAKE: "queue wake",
    BQL_LIMIT: "bql limit",
    SOFTIRQ_ENTRY: "irq:softirq_entry",
    SOFTIRQ_EXIT: "irq:softirq_exit",
    WMEM_SLEEP: "sock wait for wmem",
    WMEM_WAKE: "sock wmem wake",
    RECURSION_CUT: "xmit_recursion cut",
    NIC_IRQ: "nic tx completion",
    NET_DEV_XMIT: "net:net_dev_xmit",
    DEFER_SPLICE: "defer_list splice",
}

#: a = txq << 32 | sock
TXQ_SHIFT = 32
SOCK_MASK = (1 << TXQ_SHIFT) - 1
