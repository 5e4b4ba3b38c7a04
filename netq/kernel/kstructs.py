"""The kernel structures netq shares between CPUs, declared once.

Each record mirrors the part of a kernel struct that more than one CPU (or the
NIC) touches; each field says which lock protects it, in the kernel's terms:

* ``root_lock``   qdisc_lock(q), a :class:`shm.lock.SpinLock`
* ``_xmit_lock``  the TX queue's lock taken by HARD_TX_LOCK
* ``atomic``      changed only through :class:`shm.atomic.Atomics` RMW ops
* ``softnet``     this CPU's local_irq_save, emulated by a per-CPU semaphore
                  (the NIC's completion "interrupt" also takes it)
* ``rtnl``        configuration changes, made by the control process only
* ``owner``       a single writer (this CPU, or the NIC), read by anyone

Bumping any record here needs :data:`shm.layout.LAYOUT_VERSION` bumped too.
"""

from __future__ import annotations

from shm.layout import Record, field

TC_MAX_QUEUE = 16
MAX_TX_QUEUES = 64

# -- run control ------------------------------------------------------------------
PHASE_INIT, PHASE_RUN, PHASE_STOP, PHASE_EXIT = range(4)
#: test-only faults (a "fault" event: [[events]] action = "fault"): the NIC loses one skb silently
FAULT_NONE, FAULT_LOSE_ONE = 0, 1
FAULTS = {"lose_one": FAULT_LOSE_ONE}


class RUNCTL(Record, name="runctl"):
    phase = field("PHASE_*; written by the supervisor only")
    abort = field("non-zero: tear down now (waits give up); supervisor only")
    t_go = field("monotonic ns when workers were released; supervisor")
    t_stop = field("monotonic ns when generation stopped; supervisor")
    nic_delivered_at_stop = field(
        "NIC delivered count when t_stop was taken; supervisor (virtual clock: "
        "skbs whose wire finish is within the window; the NIC)"
    )
    fault_inject = field("test-only fault switch FAULT_*; supervisor sets, NIC clears")


# -- per-CPU: struct softnet_data and friends ------------------------------------------
class SOFTNET(Record, name="softnet_data"):
    xmit_recursion = field("per-CPU xmit_recursion (softnet_data.xmit.recursion); owner")
    xmit_recursion_max = field("deepest xmit_recursion at which a noqueue xmit passed; owner")
    xmit_recursion_cut = field("xmit_recursion found by the last recursion_alert; owner")
    wmem_sleeping = field(
        "1 while the CPU sleeps in sock_wait_for_wmem (all its sockets full); "
        "set by the owner, taken by a waker with xchg"
    )
    wmem_sleeps = field("times the CPU slept for send-buffer space; owner")
    oq_head = field("output_queue: first pending qdisc; softnet")
    oq_tail = field("output_queue: past the last pending qdisc; softnet")
    generated = field("skbs this CPU generated and passed to dev_queue_xmit; owner")
    xmit_ok = field("dev_queue_xmit returned NET_XMIT_SUCCESS; owner")
    bypass = field("skbs sent by the empty-qdisc bypass (sch_direct_xmit); owner")
    enqueued = field("skbs this CPU enqueued into a qdisc; owner")
    qdisc_runs = field("__qdisc_run calls on this CPU; owner")
    run_packets = field("skbs sent by qdisc_restart inside __qdisc_run; owner")
    quota_exhausted = field("__qdisc_run stopped by dev_tx_weight and rescheduled; owner")
    net_tx_action = field("NET_TX softirq runs that found work; owner")
    resched_trylock = field("net_tx_action could not trylock root_lock and rescheduled; owner")
    busylock_taken = field("senders that found the qdisc running and took busylock; owner")
    owner_relocks = field("root_lock re-acquisitions by the qdisc-running CPU; owner")
    owner_relock_contended = field("... of those, contended; owner")
    owner_ahead = field("holders+waiters found ahead by those re-acquisitions; owner")
    owner_wait_ns = field("time those re-acquisitions waited; owner")
    requeues = field("dev_requeue_skb calls on this CPU; owner")
    tx_busy = field("driver returned NETDEV_TX_BUSY; owner")
    cpu_ns = field("CPU time in the measured window; owner (written at stop)")
    nvcsw = field("voluntary context switches in the window; owner")
    nivcsw = field("involuntary context switches in the window; owner")
    pid = field("process acting as this CPU; owner")
    host_core = field("host core the process is pinned to; owner")
    state = field("worker state (CPU_* in workers.cpu); owner")
    generated_at_stop = field("generated when the worker saw PHASE_STOP; owner")
    # kernel/softirq.c: the NET_TX restart loop and ksoftirqd (issue 13, 3)
    softirq_runs = field("__do_softirq calls that found NET_TX pending; owner")
    softirq_restarts = field("__do_softirq restarts: NET_TX raised again meanwhile; owner")
    softirq_restart_limit = field(
        "__do_softirq loops ended by MAX_SOFTIRQ_RESTART with NET_TX pending; owner"
    )
    softirq_time_limit = field(
        "__do_softirq loops ended by MAX_SOFTIRQ_TIME with NET_TX pending; owner"
    )
    ksoftirqd_wakeups = field("wakeup_softirqd calls that woke a sleeping ksoftirqd; owner")
    ksoftirqd_runs = field("run_ksoftirqd passes (each one __do_softirq); owner")
    softirq_deferred = field(
        "do_softirq/invoke_softirq calls that left NET_TX to a runnable ksoftirqd "
        "(4.9 .. 2023); owner"
    )
    ksoftirqd_running = field("1 while this CPU's ksoftirqd is runnable (woken); owner")


# Drop reasons (named, like enum skb_drop_reason).  Index = column of "drops".
DROP_REASONS = (
    "QDISC_DROP",  # qdisc limit reached (qdisc_drop from pfifo_fast/pfifo enqueue)
    "QDISC_DEACTIVATED",  # __QDISC_STATE_DEACTIVATED seen in __dev_xmit_skb
    "NOOP_QDISC",  # txq->qdisc is noop_qdisc (device down): noop_enqueue
    "QDISC_RESET",  # purged by qdisc_reset(): dev_deactivate, ethtool -L
    "XMIT_RECURSION",  # noqueue: xmit_recursion > limit ("Dead loop on virtual device")
    "DEAD_LOOP_OWNER",  # noqueue: txq->xmit_lock_owner == this CPU ("Dead loop ...")
    "VIRT_QUEUE_STOPPED",  # noqueue: "Virtual device %s asks to queue packet!"
    "DEV_DOWN",  # noqueue branch with !IFF_UP (-ENETDOWN)
    "QDISC_BURST_DROP",  # defer (6.19): defer_count > net.core.qdisc_max_burst
    "FQ_FLOW_LIMIT",  # fq: the flow already holds flow_plimit skbs
)
DROP = {name: i for i, name in enumerate(DROP_REASONS)}
NDROP = len(DROP_REASONS)

# Kernel messages, counted per CPU and device (net_crit_ratelimited)
MSG_DEAD_LOOP, MSG_ASKS_TO_QUEUE = 0, 1
MSG_TEXT = (
    "Dead loop on virtual device %s, fix it urgently!",
    "Virtual device %s asks to queue packet!",
)
MSG_PRINTED, MSG_SUPPRESSED = 0, 1

# -- struct net_device ----------------------------------------------------------------
IFF_UP = 1 << 0
NETIF_F_LLTX = 1 << 0


class NETDEV(Record, name="net_device"):
    flags = field("IFF_*; rtnl")
    features = field("NETIF_F_*; rtnl")
    num_tx_queues = field("allocated TX queues; rtnl")
    real_num_tx_queues = field("queues in use (ethtool -L); rtnl, read locklessly")
    qdisc = field("dev->qdisc: root qdisc id; rtnl")
    num_tc = field("traffic classes (0: none); rtnl")
    tc_count = field("tc_to_txq[tc].count; rtnl", count=TC_MAX_QUEUE)
    tc_offset = field("tc_to_txq[tc].offset; rtnl", count=TC_MAX_QUEUE)
    prio_tc_map = field("prio_tc_map[prio & TC_BITMASK]; rtnl", count=TC_MAX_QUEUE)


# -- struct netdev_queue --------------------------------------------------------------
QUEUE_STATE_DRV_XOFF = 0
QUEUE_STATE_STACK_XOFF = 1
QUEUE_STATE_FROZEN = 2


class NETDEV_QUEUE(Record, name="netdev_queue"):
    state = field("__QUEUE_STATE_* bits; atomic")
    xmit_lock_owner = field("CPU holding _xmit_lock or -1; _xmit_lock")
    qdisc = field("txq->qdisc (RCU pointer): qdisc id; rtnl")
    qdisc_sleeping = field("txq->qdisc_sleeping: qdisc id; rtnl")
    irq_cpu = field("CPU the completion interrupt is affine to; rtnl")
    trans_start = field("monotonic ns of the last successful xmit; _xmit_lock")
    tx_packets = field("driver: descriptors posted; _xmit_lock")
    tx_bytes = field("driver: bytes posted; _xmit_lock")
    tx_stops = field("netif_tx_stop_queue by the driver; _xmit_lock")
    tx_busy = field("NETDEV_TX_BUSY returned; _xmit_lock")
    tx_restart = field("netif_tx_wake_queue by the completion path; NIC")
    nic_packets = field("packets put on the wire; NIC")
    nic_bytes = field("bytes put on the wire; NIC")
    completions_local = field("completions of skbs sent by irq_cpu; NIC")
    completions_remote = field("completions of skbs sent by another CPU; NIC")
    # struct dql (lib/dynamic_queue_limits.c): the enqueue side is written
    # by the driver under _xmit_lock, the completion side by the NIC
    dql_num_queued = field("BQL: bytes ever queued to the ring; _xmit_lock")
    dql_last_obj_cnt = field("BQL: bytes of the last dql_queued; _xmit_lock")
    dql_adj_limit = field("BQL: limit + num_completed; NIC (read by the driver)")
    dql_limit = field("BQL: current limit in bytes; NIC")
    dql_num_completed = field("BQL: bytes ever completed; NIC")
    dql_prev_ovlimit = field("BQL: over-limit bytes at the previous completion; NIC")
    dql_prev_num_queued = field("BQL: num_queued at the previous completion; NIC")
    dql_prev_last_obj_cnt = field("BQL: last_obj_cnt at the previous completion; NIC")
    dql_lowest_slack = field("BQL: lowest slack seen since slack_start; NIC")
    dql_slack_start = field("BQL: monotonic ns the slack window began; NIC")
    dql_max_limit = field("BQL: byte_queue_limits/limit_max; rtnl")
    dql_min_limit = field("BQL: byte_queue_limits/limit_min; rtnl")
    dql_stack_xoffs = field("BQL: times dql_queued stopped the queue (STACK_XOFF); _xmit_lock")
    dql_limit_max_seen = field("BQL: largest limit reached; NIC")


# -- struct Qdisc ---------------------------------------------------------------------
QDISC_STATE_SCHED = 0
QDISC_STATE_DEACTIVATED = 1
#: nolock: a CPU failed to take the seqlock; whoever holds it must run again
QDISC_STATE_MISSED = 2

TCQ_F_BUILTIN = 1
TCQ_F_INGRESS = 2
TCQ_F_CAN_BYPASS = 4
TCQ_F_MQROOT = 8
TCQ_F_ONETXQUEUE = 0x10
TCQ_F_NOLOCK = 0x100

QDISC_BANDS = 3
#: q->gso_skb holds the rest of a bulk-dequeued list the driver stopped on:
#: a run's budget (dev_tx_weight) where the profile has it, else as many as
#: BQL's bytes allowed (4.19), which try_bulk_dequeue_skb stops at this
#: many (the kernel's q->gso_skb is an unbounded list)
GSO_SKB_MAX = 256


class QDISC(Record, name="Qdisc"):
    ops = field("index into sch_generic.QDISC_OPS; rtnl")
    flags = field("TCQ_F_*; rtnl")
    handle = field("major:minor as 32 bits; rtnl")
    parent = field("parent handle (TC_H_ROOT for a root); rtnl")
    dev = field("owning device index; rtnl")
    dev_queue = field("global TX queue index (q->dev_queue); rtnl")
    limit = field("packets (tx_queue_len); rtnl")
    state = field("__QDISC_STATE_* bits; atomic")
    running = field(
        "__QDISC___STATE_RUNNING: CPU+1 of the runner, 0 if idle; root_lock "
        "(TCQ_F_NOLOCK: the seqlock holder)"
    )
    qlen = field("q->q.qlen (gso_skb included); root_lock (TCQ_F_NOLOCK: atomic)")
    backlog = field("qstats.backlog bytes; root_lock (TCQ_F_NOLOCK: atomic)")
    bytes = field("bstats.bytes; root_lock (TCQ_F_NOLOCK: the seqlock)")
    packets = field("bstats.packets; root_lock (TCQ_F_NOLOCK: the seqlock)")
    drops = field("qstats.drops; root_lock (TCQ_F_NOLOCK: atomic)")
    requeues = field("qstats.requeues; root_lock")
    overlimits = field("qstats.overlimits; root_lock")
    enqueued = field("skbs accepted by enqueue; root_lock (TCQ_F_NOLOCK: atomic)")
    dequeued = field(
        "skbs handed out by dequeue (gso_skb re-dequeues included); root_lock "
        "(TCQ_F_NOLOCK: the seqlock)"
    )
    purged = field("skbs removed by qdisc_reset; root_lock")
    requeue_pending = field("skbs held in the q->gso_skb list (requeued); root_lock")
    requeue_head = field("index of the first of them in gso_skb; root_lock")
    gso_skb = field(
        "q->gso_skb: a FIFO of requeued skbs as descriptors "
        "(8 words each, from requeue_head, circular); root_lock",
        count=8 * GSO_SKB_MAX,
    )
    runs = field("__qdisc_run calls; root_lock")
    run_packets = field("skbs sent by those runs; root_lock")
    bypass = field("skbs sent through the bypass; root_lock")
    bulk_lists = field("dequeue_skb calls that handed out more than one skb (bulk); root_lock")
    bulk_skbs = field("skbs handed out by those calls; root_lock")
    band_bitmap = field("pfifo_fast: bit b set when band b is non-empty; root_lock")
    defer_first = field("defer_list.first: node index + 1, 0 if empty; atomic (cmpxchg/xchg)")
    defer_count = field("skbs pushed onto a non-empty defer_list; atomic")
    defer_last_cpu = field("CPU that last pushed onto defer_list (bounce cost); racy, hint only")
    defer_splices = field("defer_list splices by the CPU that found it empty; root_lock")
    defer_spliced = field("skbs taken by those splices; root_lock")
    fq_new_head = field("fq: first flow of new_flows (flow index + 1, 0: empty); root_lock")
    fq_new_tail = field("fq: last flow of new_flows; root_lock")
    fq_old_head = field("fq: first flow of old_flows; root_lock")
    fq_old_tail = field("fq: last flow of old_flows; root_lock")
    fq_quantum = field("fq: credit a flow gets per round (bytes); rtnl")
    fq_initial_quantum = field("fq: credit of a new flow (bytes); rtnl")
    fq_flow_plimit = field("fq: skbs a flow may hold; rtnl")
    fq_flows_plimit = field("fq: drops because a flow held flow_plimit skbs; root_lock")


# -- fq flows (net/sched/sch_fq.c struct fq_flow): one per socket, plus orphans -----------
class FQ_FLOW(Record, name="fq_flow", pad=False):
    next = field("next flow on its list (flow index + 1, 0 at the end); root_lock")
    list = field("0 detached, 1 on new_flows, 2 on old_flows; root_lock")
    credit = field("bytes it may still send this round; root_lock")
    age = field("monotonic ns it was detached (flow_refill_delay); root_lock")


# -- defer_list nodes (6.19): an skb waiting on a qdisc's lock-free list --------------------
class DEFER_NODE(Record, name="defer_node", pad=False):
    desc = field("the skb as a descriptor; written by the pushing CPU before the push", count=8)
    next = field("ll_node.next: node index + 1, 0 at the end; written before the push")
    state = field("1 while on a list; set by the owner CPU, cleared by the splicer")


#: nodes each CPU owns (allocates from); a CPU waits if all are on lists
DEFER_NODES_PER_CPU = 2048


# -- struct sock (the part the transmit path reads) ------------------------------------
class SOCK(Record, name="sock"):
    sk_tx_queue_mapping = field("cached TX queue or -1; owner CPU (socket lock)")
    dst_cached = field("1 if sk_dst_cache is set (a connected socket); owner CPU")
    sk_hash = field("sk->sk_hash; rtnl")
    sk_txhash = field("sk->sk_txhash (random per socket); rtnl")
    cpu = field("emulated CPU that owns and sends on this socket; rtnl")
    sent = field("skbs handed to dev_queue_xmit; owner CPU")
    dropped = field("of those, dropped in the sending CPU's context; owner CPU")
    dropped_ctl = field("of those, dropped by control (qdisc_reset); control")
    completed = field("of those, completed by the NIC; NIC")
    sent_bytes = field("truesize of the skbs sent (sk_wmem_alloc charges); owner CPU")
    completed_bytes = field("truesize freed by TX completion (sock_wfree); NIC")
    dropped_bytes = field("truesize freed by drops in the owner's context; owner CPU")
    dropped_ctl_bytes = field("truesize freed by drops elsewhere; atomic")
    wmem_blocked = field("times the socket was skipped with a full send buffer; owner CPU")
    queue_moves = field(
        "times the cached queue changed (ooo_okay, txq_reselection_ms, or the "
        "cached queue went out of range after real_num_tx_queues shrank); owner CPU"
    )
    sk_tx_queue_mapping_ns = field(
        "sk_tx_queue_mapping_jiffies (6.19): when the cached queue was last set "
        "or refreshed, in the run's clock (ns); owner CPU (socket lock)"
    )
    txq_expired = field(
        "times sk_tx_queue_get found the cached queue older than "
        "txq_reselection_ms and let the skb re-pick (6.19); owner CPU"
    )


# -- the NIC -----------------------------------------------------------------------------
class NIC(Record, name="nic"):
    pid = field("NIC process; NIC")
    state = field("worker state; NIC")
    delivered = field("packets put on the wire; NIC")
    delivered_bytes = field("bytes put on the wire; NIC")
    reorders = field("skbs seen out of order within a flow that did not move; NIC")
    reorders_moved = field("out-of-order skbs of flows that changed queue; NIC")
    flow_queue_changes = field("times a flow was seen on a different queue; NIC")
    wakes = field("netif_tx_wake_queue calls; NIC")
    bql_wakes = field("queues BQL had stopped and netdev_tx_completed_queue restarted; NIC")
    write_space_wakes = field("CPUs woken by sock_def_write_space (a socket half empty); NIC")
    busy_ns = field("time spent transmitting (not idle) in the window; NIC")
    cpu_ns = field("NIC process CPU time in the window; NIC")
    lat_blob_len = field("bytes of the encoded latency histogram in nic_blob; NIC")
    slow_ns = field("extra ns the NIC spends per packet (a slow NIC); supervisor")


NIC_BLOB_BYTES = 64 * 1024
