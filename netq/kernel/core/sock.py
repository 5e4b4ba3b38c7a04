"""struct sock, the part the transmit path reads (include/net/sock.h).

A socket belongs to one emulated CPU (its traffic generator), which stands
for the socket lock: ``sk_tx_queue_mapping`` (and its 6.19 time stamp),
``dst_cached``, ``sent`` and ``dropped`` have that CPU as their only writer.
``completed`` is written by the NIC, ``dropped_ctl`` by any other context
through an atomic add.

Time: the socket's time stamps (``sk_tx_queue_mapping_jiffies``) are read
from :func:`ktime_get_ns` (:mod:`.timekeeping`), the run's clock, in ns
rather than jiffies: virtual ns on the virtual clock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import posix_ipc

from ..kstructs import SOCK, SOFTNET
from ..tracepoints import WMEM_SLEEP, WMEM_WAKE
from .percpu import this
from .timekeeping import ktime_get_ns

if TYPE_CHECKING:
    from ..net_namespace import Net
    from .skbuff import SkBuff

_MAP = SOCK.sk_tx_queue_mapping
_MAP_NS = SOCK.sk_tx_queue_mapping_ns
#: HZ as ns: sk_tx_queue_set refreshes a mapping's stamp at most once per HZ
HZ_NS = 1_000_000_000


class Sock:
    __slots__ = (
        "base",
        "cpu",
        "f",
        "id",
        "proto",
        "rx_queue",
        "seq",
        "sk_hash",
        "sk_txhash",
        "sndbuf",
    )

    def __init__(
        self,
        sid: int,
        f: memoryview,
        base: int,
        cpu: int,
        proto: str,
        sk_hash: int,
        sk_txhash: int,
        rx_queue: int = -1,
        sndbuf: int = 0,
    ) -> None:
        self.id = sid
        self.f = f
        self.base = base
        self.cpu = cpu
        self.proto = proto
        self.sk_hash = sk_hash
        self.sk_txhash = sk_txhash
        #: sk_rx_queue_mapping: the RX queue its incoming packets arrived on,
        #: or -1 (sk_rx_queue_get); netq's traffic records it once, at setup
        self.rx_queue = rx_queue
        #: sk->sk_sndbuf (SO_SNDBUF), set at setup; 0 is netq's "unlimited"
        self.sndbuf = sndbuf
        #: next per-socket sequence number (owner CPU's private state)
        self.seq = 0

    def outstanding(self) -> int:
        """Skbs sent and neither completed by the NIC nor dropped."""
        f = self.f
        return f[SOCK.sent] - f[SOCK.completed] - f[SOCK.dropped] - f[SOCK.dropped_ctl]

    def __repr__(self) -> str:
        return f"<sock {self.id} cpu{self.cpu} {self.proto}>"


def sk_tx_queue_get(sk: Sock | None) -> int:
    """sk_tx_queue_get(): the socket's cached TX queue, or -1.

    6.19 (profile ``txq_reselection``, commit 4a7708443dec "net: allow busy
    connected flows to switch tx queues", Oct 2025): -1 also once the
    mapping is older than net.core.txq_reselection_ms
    (``time_is_before_jiffies(sk_tx_queue_mapping_jiffies + resel)``, 0:
    never), so that __netdev_pick_tx re-picks by XPS or the hash even for a
    flow that always has packets in flight; counted in ``txq_expired``.
    Earlier kernels keep a cached queue until ooo_okay or an out-of-range
    index lets the skb re-pick.  All netq sockets are full sockets
    (``sk_fullsock``).  Differences: ns instead of jiffies."""
    if sk is None:
        return -1
    f = sk.f
    val = f[_MAP]
    if val < 0:
        return -1
    net = this.net
    if net.profile.txq_reselection:
        resel = net.cfg.txq_reselection_ms
        if resel and ktime_get_ns() > f[_MAP_NS] + resel * 1_000_000:
            f[SOCK.txq_expired] += 1
            return -1
    return val


def sk_tx_queue_set(sk: Sock, tx_queue: int) -> None:
    """sk_tx_queue_set(): cache ``tx_queue`` on the socket.

    6.19 (``txq_reselection``): a new queue also stamps the time; the same
    queue refreshes the stamp only when it is more than HZ old, so a flow
    whose re-pick keeps choosing its queue is re-picked again about every
    second (every skb in between when txq_reselection_ms < HZ)."""
    f = sk.f
    if not this.net.profile.txq_reselection:
        f[_MAP] = tx_queue
        return
    now = ktime_get_ns()
    if f[_MAP] != tx_queue:
        f[_MAP] = tx_queue
        f[_MAP_NS] = now
        return
    if now > f[_MAP_NS] + HZ_NS:
        f[_MAP_NS] = now


def skb_set_owner_w(skb: SkBuff, sk: Sock) -> None:
    """Set ``skb->ooo_okay`` as the profile's kernel does when the skb is
    charged to its socket (the send-buffer charge itself is netq's
    ``sent_bytes``, counted by the sender).

    * ``ooo_okay == "owner_w"`` (6.19, commit d365c9bca35c "net: control
      skb->ooo_okay from skb_set_owner_w()", Oct 2025): for every protocol,
      ``skb->ooo_okay = (old_wmem == SK_WMEM_ALLOC_BIAS)`` -- no other skb
      of the socket is in a host queue (qdisc, driver ring);
    * ``"tcp"`` (2.6.38 .. 6.18): only TCP sets it, in tcp_transmit_skb,
      when nothing of the socket is in flight
      (``sk_wmem_alloc_get(sk) < SKB_TRUESIZE(1)``; 3.13:
      ``sk_wmem_alloc_get(sk) == 0``); UDP never.

    netq's "in flight" is :meth:`Sock.outstanding` (skbs sent and neither
    completed nor dropped), read before this skb is counted as sent."""
    if owner_w_sets_ooo_okay(this.net.profile.ooo_okay, sk.proto):
        skb.ooo_okay = sk.outstanding() == 0
    else:
        skb.ooo_okay = False


def owner_w_sets_ooo_okay(mode: str, proto: str) -> bool:
    """Whether :func:`skb_set_owner_w` sets ooo_okay on the skbs of a socket
    of ``proto`` under the profile's ``ooo_okay`` rule ``mode`` (else it is
    always False).  Fixed for a socket's life: a sender may ask once."""
    return mode == "owner_w" or (mode == "tcp" and proto == "tcp")


def sk_dst_cached(sk: Sock) -> bool:
    """rcu_access_pointer(sk->sk_dst_cache) != NULL: a connected socket."""
    return bool(sk.f[SOCK.dst_cached])


#: what an skb charges to sk_wmem_alloc beyond its data: SKB_TRUESIZE()'s
#: sk_buff + skb_shared_info, cache-aligned, on x86-64
SKB_TRUESIZE_OVERHEAD = 576


def skb_truesize(length: int) -> int:
    return length + SKB_TRUESIZE_OVERHEAD


def sk_wmem_alloc(sk: Sock) -> int:
    """Bytes charged to the socket's send buffer and not yet freed."""
    f = sk.f
    return (
        f[SOCK.sent_bytes]
        - f[SOCK.completed_bytes]
        - f[SOCK.dropped_bytes]
        - f[SOCK.dropped_ctl_bytes]
    )


_SENT_B, _DONE_B = SOCK.sent_bytes, SOCK.completed_bytes
_DROP_B, _DROP_CTL_B = SOCK.dropped_bytes, SOCK.dropped_ctl_bytes


def sock_wmem_room(sk: Sock, sndbuf: int, length: int) -> bool:
    """sock_alloc_send_pskb()'s admission test (net/core/sock.c): may the
    socket charge one more skb of ``length`` data bytes to its send buffer?

    The kernel tests ``sk_wmem_alloc_get(sk) < sk->sk_sndbuf`` before it
    allocates, so its last skb may overshoot sk_sndbuf by up to a truesize.
    netq admits an skb only if the charge stays within the buffer after it,
    ``sk_wmem_alloc + skb_truesize(length) <= sndbuf``, so a socket never
    holds more than SO_SNDBUF.  ``sndbuf`` 0 is netq's "unlimited" (no kernel
    socket has that).  Called by the owner CPU only; the fields it reads are
    the socket's send-buffer counters (see :func:`sk_wmem_alloc`).
    """
    if not sndbuf:
        return True
    f = sk.f  # sk_wmem_alloc(sk), inline: this runs once per generated skb
    return (
        f[_SENT_B] - f[_DONE_B] - f[_DROP_B] - f[_DROP_CTL_B] + length + SKB_TRUESIZE_OVERHEAD
    ) <= sndbuf


def sk_dropped(sk: Sock, length: int) -> None:
    """Count a dropped skb of ``sk`` and free its send-buffer charge (plain
    adds by its owner CPU, atomic adds from any other context).

    A free in another context is kfree_skb -> sock_wfree -> sk_write_space
    on a socket whose owner may sleep for send-buffer space: it wakes the
    owner as a TX completion does (:func:`sk_write_space`).  The owner's
    own drops need no wake: it is running."""
    if sk.cpu == this.cpu:
        sk.f[SOCK.dropped] += 1
        sk.f[SOCK.dropped_bytes] += length + SKB_TRUESIZE_OVERHEAD
    else:
        net = this.net
        at = net.atomics
        at.fetch_add(sk.base + SOCK.dropped_ctl, 1)
        at.fetch_add(sk.base + SOCK.dropped_ctl_bytes, length + SKB_TRUESIZE_OVERHEAD)
        sk_write_space(net, sk)


# -- waiting for send-buffer space (net/core/sock.c) -------------------------------------
#: a sleeping CPU re-checks its phase and abort flags this often
WMEM_WAIT_S = 0.002


def sock_writeable_half(sk: Sock, sndbuf: int) -> bool:
    """sock_def_write_space()'s test: sk_wmem_alloc at most half of sk_sndbuf."""
    return sk_wmem_alloc(sk) * 2 <= sndbuf


def sk_write_space(net: Net, sk: Sock) -> bool:
    """sock_def_write_space() for one socket, after a free in a context
    other than its owner's: wake the owner CPU if it sleeps for send-buffer
    space and the socket is at most half full (sock_writeable()).  Returns
    whether it woke the CPU."""
    return (
        bool(sk.sndbuf)
        and bool(net.softnet[sk.cpu][SOFTNET.wmem_sleeping])
        and sock_writeable_half(sk, sk.sndbuf)
        and wake_cpu(net, sk.cpu)
    )


def sock_def_write_space(net: Net, limited: list[tuple[int, list[tuple[Sock, int]]]]) -> int:
    """sock_def_write_space() after TX completions freed send-buffer charges
    (sock_wfree): a CPU that sleeps in :func:`sock_wait_for_wmem` because all
    its sockets were full is woken once one of them is at most half full
    (sock_writeable()).

    netq differs in when and how often it runs: the kernel calls it from
    sock_wfree() for each freed skb of a socket with SOCK_NOSPACE set and
    wakes that socket's wait queue; here the NIC calls it once per round,
    after the round's completions, over ``limited`` — per CPU, that CPU's
    sockets with a send-buffer limit, as ``[(cpu, [(sock, sndbuf), ...])]``
    — and wakes a sleeping CPU (its senders share one wait semaphore).
    ``wmem_sleeping`` is read racily and taken with xchg by :func:`wake_cpu`,
    so a CPU is posted at most once per sleep.  Returns the CPUs woken.
    """
    softnet = net.softnet
    woken = 0
    for cpu, socks in limited:
        if softnet[cpu][SOFTNET.wmem_sleeping]:
            for sk, sndbuf in socks:
                if sock_writeable_half(sk, sndbuf):
                    if wake_cpu(net, cpu):
                        woken += 1
                    break
    return woken


def sock_wait_for_wmem(net: Net, cpu: int, writable: Callable[[], bool]) -> bool:
    """Sleep until a socket of this CPU has send-buffer space again.

    Mirrors sock_alloc_send_pskb() blocking in sock_wait_for_wmem(): the
    sender publishes that it sleeps (``wmem_sleeping``; SOCK_NOSPACE), re-
    tests (``writable()``: a completion may have freed space meanwhile; the
    kernel's smp_mb and re-test), then sleeps on its wait semaphore until
    sock_def_write_space (the NIC's TX completion, once a socket is half
    empty) or a raised softirq (:func:`wake_cpu`) posts it, or
    ``WMEM_WAIT_S`` passes (a bounded wait, so the phase and abort flags are
    seen; the kernel's sk_sndtimeo), or a signal interrupts it.  Returns
    whether it slept.

    A waker that takes the flag after a timeout or a successful re-test
    leaves one post behind; the next wait then returns at once (a spurious
    wakeup, as the kernel allows).
    """
    sd = net.softnet[cpu]
    sd[SOFTNET.wmem_sleeping] = 1
    flag = net.softnet_base[cpu] + SOFTNET.wmem_sleeping
    if writable():
        net.atomics.xchg(flag, 0)
        return False
    sd[SOFTNET.wmem_sleeps] += 1
    tr = this.trace
    if tr is not None:
        tr.emit(WMEM_SLEEP)
    try:
        net.cpu_wake[cpu].acquire(WMEM_WAIT_S)
    except (posix_ipc.BusyError, posix_ipc.SignalError):
        # timed out, or interrupted (a SIGSTOP/SIGCONT makes sem_timedwait
        # fail with EINTR): a spurious wakeup, the caller re-tests
        net.atomics.xchg(flag, 0)
    if tr is not None:
        tr.emit(WMEM_WAKE)
    return True


def wake_cpu(net: Net, cpu: int) -> bool:
    """Wake ``cpu`` if it sleeps in sock_wait_for_wmem (wake_up on its wait
    queue; for a raised softirq, the IPI that gets the CPU to run it).
    Returns whether it was asleep."""
    if net.softnet[cpu][SOFTNET.wmem_sleeping] and net.atomics.xchg(
        net.softnet_base[cpu] + SOFTNET.wmem_sleeping, 0
    ):
        vt = this.vt
        if vt is not None:  # it resumes at the waker's virtual time at the earliest
            vt.wake_other(vt.clock_base(cpu))
        net.cpu_wake[cpu].release()
        return True
    return False
