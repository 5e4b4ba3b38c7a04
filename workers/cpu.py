"""An emulated CPU: one pinned process that generates traffic on its sockets,
calls dev_queue_xmit for every skb and runs its NET_TX softirq in between.

The loop mirrors what a CPU running senders does: a socket's sendmsg ends in
``dev_queue_xmit`` with BHs disabled; ``rcu_read_unlock_bh`` →
``local_bh_enable`` then runs pending softirqs (``do_softirq``), which is
where ``net_tx_action`` drains the output_queue, restarting while NET_TX is
raised again, up to the profile's limits, then leaving the rest to
ksoftirqd (:mod:`netq.kernel.softirq`).  So after every skb the worker calls
``do_softirq`` if anything is pending; before the next skb (the sender's
scheduling point) a runnable ksoftirqd gets one turn; an idle worker runs
ksoftirqd or, as an interrupt's exit would, ``invoke_softirq``.

Lifecycle (``SOFTNET.state``): READY after pinning and binding, RUN once the
supervisor opens the start gate, STOPPED when it sees PHASE_STOP (it records
its CPU time and context switches for the measured window, then keeps running
softirqs so that the queues drain), DONE when it sees PHASE_EXIT.
"""

from __future__ import annotations

import os
import random
import resource
import signal
import time

import posix_ipc

from netq.kernel.core.dev import dev_queue_xmit
from netq.kernel.core.netdevice import NET_XMIT_SUCCESS
from netq.kernel.core.percpu import this
from netq.kernel.core.skbuff import SkBuff
from netq.kernel.core.sock import (
    SKB_TRUESIZE_OVERHEAD,
    WMEM_WAIT_S,
    owner_w_sets_ooo_okay,
    skb_set_owner_w,
    sock_wait_for_wmem,
    sock_wmem_room,
)
from netq.kernel.ipv4.route import rt_tos2priority
from netq.kernel.kstructs import PHASE_EXIT, PHASE_RUN, RUNCTL, SOCK, SOFTNET
from netq.kernel.softirq import do_softirq, invoke_softirq, run_ksoftirqd
from shm.lock import RunAborted
from workers.platform import die_with_parent

CPU_NEW, CPU_READY, CPU_RUN, CPU_STOPPED, CPU_DONE, CPU_ABORTED = range(6)
CPU_STATE_NAMES = ("new", "ready", "running", "stopped", "done", "aborted")

#: skbs sent between checks of the run phase and the packet budget
BURST = 16

_GEN, _OK = SOFTNET.generated, SOFTNET.xmit_ok
_OQH, _OQT = SOFTNET.oq_head, SOFTNET.oq_tail
_KSOFTIRQD = SOFTNET.ksoftirqd_running
_SENT, _SENT_BYTES = SOCK.sent, SOCK.sent_bytes
_WMEM_BLOCKED = SOCK.wmem_blocked


class Generator:
    """This CPU's sockets and how an skb is made for one of them."""

    def __init__(self, net, cpu: int, seed: int | None) -> None:
        self.net = net
        self.cpu = cpu
        self.rng = random.Random(None if seed is None else seed * 1000 + cpu)
        #: per socket: (sock, device, its TrafficConfig, min and max length,
        #: skb->priority, SO_SNDBUF, whether skb_set_owner_w sets ooo_okay)
        self.socks = []
        ooo_mode = net.profile.ooo_okay
        for sid, c, t in net.sock_groups:
            if c == cpu:
                sk = net.socks[sid]
                dev = net.dev_by_name[t.device or net.devices[0].name]
                lo, hi = (t.length, t.length) if isinstance(t.length, int) else t.length
                prio = t.priority if t.tos is None else rt_tos2priority(t.tos)
                ooo = owner_w_sets_ooo_okay(ooo_mode, sk.proto)
                self.socks.append((sk, dev, t, lo, hi, prio, t.sndbuf, ooo))
        self.next = 0
        self.seq = 0
        # a CPU floods if any of its groups floods; else it sends the sum of
        # its groups' rates (each group's rate is per CPU, shared by its sockets)
        groups = {id(t): t.rate_pps for _, c, t in net.sock_groups if c == cpu}
        self.rate_pps = 0.0 if (not groups or 0.0 in groups.values()) else sum(groups.values())

    def make_skb(self, now: int) -> SkBuff | None:
        """The next socket's next skb, or None if every socket's send buffer
        is full (the CPU then waits for TX completions, as a sender blocked
        in sock_alloc_send_skb would)."""
        socks = self.socks
        n = len(socks)
        if not n:
            return None  # a CPU without sockets only runs softirqs
        i = self.next
        left = n
        while True:
            sk, dev, t, lo, hi, prio, sndbuf, ooo = socks[i]
            i = i + 1 if i + 1 < n else 0
            length = lo if lo == hi else self.rng.randint(lo, hi)
            if not sndbuf or sock_wmem_room(sk, sndbuf, length):
                break
            sk.f[_WMEM_BLOCKED] += 1
            left -= 1
            if not left:
                self.next = i
                return None
        self.next = i
        skb = SkBuff(self.cpu, self.seq, sk, sk.seq, length, prio, now, dev, False, t.rx_queue)
        if ooo:  # ooo_okay: TCP's rule, or 6.19's for every protocol (else False)
            skb_set_owner_w(skb, sk)
        self.seq += 1
        sk.seq += 1
        return skb

    def writable(self) -> bool:
        """Some socket has room for its largest skb (make_skb would not
        find every send buffer full)."""
        for sk, _dev, _t, _lo, hi, _prio, sndbuf, _ooo in self.socks:
            if sock_wmem_room(sk, sndbuf, hi):
                return True
        return False

    def send_one(self, sd, now: int | None = None) -> int | None:
        """Generate one skb (stamped ``now``: the virtual clock, else the
        wall clock) and transmit it; returns dev_queue_xmit's rc, or None if
        every socket waits for send-buffer space."""
        skb = self.make_skb(time.perf_counter_ns() if now is None else now)
        if skb is None:
            return None
        sd[_GEN] += 1
        # make_skb always gives its skb a socket; no check on the per-packet path
        f = skb.sk.f  # type: ignore[union-attr]
        f[_SENT] += 1
        f[_SENT_BYTES] += skb.len + SKB_TRUESIZE_OVERHEAD
        rc = dev_queue_xmit(skb)
        if rc == NET_XMIT_SUCCESS:
            sd[_OK] += 1
        return rc


def softirq_pending(sd) -> bool:
    return sd[_OQH] != sd[_OQT]


def softirq_idle(sd) -> bool:
    """The sender does not run: a runnable ksoftirqd gets the CPU, else a
    pending NET_TX runs as an interrupt's exit would run it.  Returns
    whether there was softirq work."""
    if sd[_KSOFTIRQD]:
        return run_ksoftirqd()
    return softirq_pending(sd) and invoke_softirq()


def cpu_main(
    net,
    cpu: int,
    host_core: int,
    gate,
    quota: int | None,
    supervisor_pid: int,
    profile_dir: str | None = None,
) -> None:
    """Entry point of an emulated CPU process (forked by the supervisor).

    It dies with the supervisor (SIGKILL by PR_SET_PDEATHSIG), leaves
    Ctrl-C and SIGHUP to it (the whole process group gets them; the
    supervisor then aborts the run), and ``profile_dir`` (--profile-dir)
    makes it write cProfile statistics to ``profile_dir/cpuN.prof``."""
    die_with_parent(supervisor_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor handles Ctrl-C
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # ... and a hangup
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # the supervisor forked with these blocked: a Ctrl-C that came meanwhile is
    # dropped now (ignored), a SIGTERM kills quietly
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM, signal.SIGHUP})
    try:
        os.sched_setaffinity(0, {host_core})
    except OSError:
        pass
    net.bind_cpu(cpu)
    sd = net.softnet[cpu]
    rc = net.runctl
    sd[SOFTNET.pid] = os.getpid()
    sd[SOFTNET.host_core] = host_core
    sd[SOFTNET.state] = CPU_READY
    gen = Generator(net, cpu, net.cfg.seed)
    prof = None
    if profile_dir:
        import cProfile

        prof = cProfile.Profile()
    try:
        _wait_gate(gate, rc)
        sd[SOFTNET.state] = CPU_RUN
        run = _run_virtual if this.vt is not None else _run
        if prof is not None:
            prof.runcall(run, net, gen, sd, rc, quota)
        else:
            run(net, gen, sd, rc, quota)
        sd[SOFTNET.state] = CPU_DONE
    except RunAborted:
        sd[SOFTNET.state] = CPU_ABORTED
    if prof is not None and profile_dir is not None:
        prof.dump_stats(os.path.join(profile_dir, f"cpu{cpu}.prof"))
    os._exit(0)


def _wait_gate(gate, rc) -> None:
    import posix_ipc

    while True:
        try:
            gate.acquire(0.1)
            return
        except posix_ipc.BusyError:
            if rc[RUNCTL.abort]:
                raise RunAborted("aborted before start") from None
        except posix_ipc.SignalError:
            pass


def _run(net, gen: Generator, sd, rc, quota: int | None) -> None:
    """Send until the phase leaves RUN or this CPU's ``quota`` of packets is
    sent (None: no budget, the run is timed; 0: send nothing, only run
    softirqs -- a budget smaller than the number of senders)."""
    pc = time.perf_counter_ns
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    cpu0 = time.process_time_ns()
    interval = 1e9 / gen.rate_pps if gen.rate_pps else 0.0
    next_send = float(pc())
    sent = 0
    limit = quota

    def writable() -> bool:
        return gen.writable() or softirq_pending(sd)

    while rc[RUNCTL.phase] == PHASE_RUN and not rc[RUNCTL.abort]:
        if limit is not None and sent >= limit:
            # budget done: keep serving softirqs until the phase changes
            if not softirq_idle(sd):
                time.sleep(0.0002)
            continue
        if interval:
            now = pc()
            if now < next_send:
                if not softirq_idle(sd):
                    time.sleep(min((next_send - now) / 1e9, 0.0002))
                continue
            next_send += interval
            if next_send < now - 1e8:  # far behind: do not burst to catch up
                next_send = now
            n = 1
        else:
            n = BURST if limit is None else min(BURST, limit - sent)
        for _ in range(n):
            if sd[_KSOFTIRQD]:
                run_ksoftirqd()  # the sender's scheduling point: ksoftirqd's turn
            if gen.send_one(sd) is None:
                # every socket waits for TX completions: serve softirqs, else
                # sleep in sock_wait_for_wmem until the NIC's completions
                # leave a socket half empty (or a softirq is raised here)
                if not softirq_idle(sd):
                    sock_wait_for_wmem(net, gen.cpu, writable)
                break
            sent += 1
            if sd[_OQH] != sd[_OQT]:
                do_softirq()  # local_bh_enable
    # The measured window ends here for this CPU.
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    sd[SOFTNET.cpu_ns] = time.process_time_ns() - cpu0
    sd[SOFTNET.nvcsw] = ru1.ru_nvcsw - ru0.ru_nvcsw
    sd[SOFTNET.nivcsw] = ru1.ru_nivcsw - ru0.ru_nivcsw
    sd[SOFTNET.generated_at_stop] = sd[_GEN]
    sd[SOFTNET.state] = CPU_STOPPED
    # Drain: keep running NET_TX until the supervisor says everything is out.
    while rc[RUNCTL.phase] != PHASE_EXIT and not rc[RUNCTL.abort]:
        if not softirq_idle(sd):
            time.sleep(0.0002)


def _idle_virtual(net, cpu: int, vt, sd, rc, writable=None) -> None:
    """Nothing to do on the virtual clock: sleep until a waker -- a TX
    completion or a free that leaves a socket half empty
    (sk_write_space), or a softirq raised here -- hands this CPU its
    virtual time.

    The kernel's protocol (sock_alloc_send_pskb: set SOCK_NOSPACE, smp_mb,
    re-test, schedule), kept exact in virtual time: the flag is set and
    ``writable()`` (some socket has room again; None after the window's end,
    when the CPU only serves softirqs) re-tested while this CPU still holds
    GVT at its clock, which the window at the loop's top made the latest
    one -- every completion and raise before it is done, none after it has
    started.  Only then does it stop holding GVT.  A bounded wait that
    passes is no event: the CPU sleeps on with its clock where it was (it
    looks at the phase and abort flags); resuming at the wall moment's GVT
    would let the host's timing decide when a sender runs again, and
    sending on room the kernel's sender would not have been woken for."""
    flag = net.softnet_base[cpu] + SOFTNET.wmem_sleeping
    xchg = net.atomics.xchg
    wait = net.cpu_wake[cpu].acquire
    sd[SOFTNET.wmem_sleeping] = 1
    if (
        softirq_pending(sd)
        or (writable is not None and writable())
        or rc[RUNCTL.phase] == PHASE_EXIT
        or rc[RUNCTL.abort]
    ):
        if not xchg(flag, 0):
            _take_post(wait, rc)  # a waker took the flag: its post is due
        return
    vt.sleep()
    while True:
        try:
            wait(WMEM_WAIT_S)
        except (posix_ipc.BusyError, posix_ipc.SignalError):
            if rc[RUNCTL.phase] != PHASE_EXIT and not rc[RUNCTL.abort]:
                continue
            if xchg(flag, 0):
                vt.wake_idle()  # the run ends and nobody woke it
                return
            _take_post(wait, rc)
        break
    vt.wake()


def _take_post(wait, rc) -> None:
    """Take the post a waker makes after it took the sleep flag (it posts
    right after), so that no post is left for a later sleep."""
    while True:
        try:
            wait(WMEM_WAIT_S)
            return
        except (posix_ipc.BusyError, posix_ipc.SignalError):
            if rc[RUNCTL.abort]:
                raise RunAborted("aborted while waiting for a wake-up") from None


def _run_virtual(net, gen: Generator, sd, rc, quota: int | None) -> None:
    """:func:`_run` on the virtual clock (docs/virtual-time.md): each skb's
    send charges sendmsg's price and its path charges the kernel model's;
    the CPU stops sending when its clock passes the run's duration (or its
    quota is sent), then serves softirqs until PHASE_EXIT.  Whenever it has
    nothing to do it sleeps without holding GVT (:func:`_idle_virtual`); a
    rate-limited sender's idle time moves its clock, not its CPU time."""
    vt = this.vt
    assert vt is not None  # cpu_main runs this loop on a virtual run only
    cpu = gen.cpu
    costs = net.costs
    sendmsg = costs.sendmsg_ns
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    end = None if quota is not None else int(net.cfg.duration * 1e9)
    if end is not None and not gen.socks:
        # no socket here: this CPU never sends, so its clock would never
        # reach the end (the run would wait for it); it serves softirqs
        # (completions, rescheduled qdiscs) below, from the start
        end = vt.now
    interval = int(1e9 / gen.rate_pps) if gen.rate_pps else 0
    next_send = 0
    sent = 0
    while not rc[RUNCTL.abort]:
        if (end is not None and vt.now >= end) or (quota is not None and sent >= quota):
            break
        # what this CPU reads next (its softirq flags, its send buffers) is
        # written by others too: everything earlier in virtual time first
        vt.window()
        if sd[_KSOFTIRQD]:
            run_ksoftirqd()
            continue
        if softirq_pending(sd):
            do_softirq()
            continue
        if interval and vt.now < next_send:
            vt.idle_until(next_send if end is None else min(next_send, end))
            continue
        vt.charge(sendmsg)
        if gen.send_one(sd, vt.now) is None:
            vt.now -= sendmsg  # nothing was sent: the send is not charged
            vt.busy -= sendmsg
            _idle_virtual(net, cpu, vt, sd, rc, gen.writable)
            continue
        sent += 1
        if interval:
            next_send += interval
    # The measured window ends here for this CPU: its CPU time is the
    # virtual time it was charged (work and spinning lock waits)
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    sd[SOFTNET.cpu_ns] = vt.busy
    sd[SOFTNET.nvcsw] = ru1.ru_nvcsw - ru0.ru_nvcsw
    sd[SOFTNET.nivcsw] = ru1.ru_nivcsw - ru0.ru_nivcsw
    sd[SOFTNET.generated_at_stop] = sd[_GEN]
    # the mechanism counters of the window (the drain after it runs with
    # nobody else sending, and would dilute them)
    net.softnet_at_stop[cpu][:] = sd
    sd[SOFTNET.state] = CPU_STOPPED
    while rc[RUNCTL.phase] != PHASE_EXIT and not rc[RUNCTL.abort]:
        vt.window()
        if sd[_KSOFTIRQD]:
            run_ksoftirqd()
        elif softirq_pending(sd):
            do_softirq()
        else:
            _idle_virtual(net, cpu, vt, sd, rc)
    if quota is not None:
        # a packet budget's run lasts until its last skb is out: the CPU
        # time includes the softirq work done for it after the last send
        sd[SOFTNET.cpu_ns] = vt.busy
    vt.done()
