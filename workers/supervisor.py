"""The supervisor: builds the shared state, starts and watches the workers,
stops, drains, checks, reports, and removes every IPC object it created.

Run lifecycle (``RUNCTL.phase``): INIT while workers start, pin themselves and
report READY; RUN once the start gate opens (all CPUs are released by one
semaphore post each, so they start together); STOP when the duration or the
packet budget is reached (CPUs stop generating and only run softirqs, the NIC
keeps draining); EXIT once everything is delivered or dropped.

Watchdog (every ``TICK_S``): a worker that died ends the run at once (its
exit code/signal is reported); a CPU whose generator stops moving while it
should be sending, a NIC with full rings and no deliveries, or a drain that
stops making progress, for ``stall_timeout`` seconds, ends the run as stalled
with a report of every lock's owner and waiters.  Ctrl-C ends the run with a
partial report and exit code 130 (SIGTERM: 143).  In every case ``RUNCTL.abort``
is raised so that waiting workers give up, stragglers are killed, and the
``IpcOwner`` unlinks every segment and semaphore.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import multiprocess as mp

from netq.kernel.kstructs import (
    FAULTS,
    NETDEV_QUEUE,
    NIC,
    PHASE_EXIT,
    PHASE_RUN,
    PHASE_STOP,
    QDISC,
    QDISC_STATE_SCHED,
    RUNCTL,
    SOFTNET,
)
from netq.machine import invariants, result, tracedata
from netq.machine.config import EventConfig, RunConfig
from netq.machine.net import Net
from netq.machine.plan import VT_NIC, plan_run, what_if_reasons
from shm.ipc import IpcOwner, Terminated
from shm.lock import RunAborted
from shm.vtime import VirtualCpu

from .cpu import CPU_READY, CPU_STATE_NAMES, CPU_STOPPED, cpu_main
from .nic import NIC_READY, nic_main
from .platform import measure_platform, proc_state

TICK_S = 0.02
#: the watchdog's tick while an event waits for the virtual clocks to reach it
VT_EVENT_TICK_S = 0.0005
#: signals a worker leaves to the supervisor or takes with the default action
WORKER_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
START_TIMEOUT_S = 20.0

_CTX = mp.get_context("fork")


@dataclass
class Outcome:
    status: str
    result: result.Result
    faults: list[str] = field(default_factory=list)
    #: a traced run's events (cfg.trace set), else None
    trace: tracedata.TraceData | None = None

    @property
    def exit_code(self) -> int:
        return result.EXIT_CODES[self.status]


class Supervisor:
    #: a virtual run's wall seconds from the start gate to the last CPU's stop
    wall_s: float = 0.0
    #: a virtual run's window in virtual seconds (None: the run ended before
    #: it was measured)
    virtual_s: float | None = None

    def __init__(self, cfg: RunConfig, progress=None) -> None:
        self.cfg = cfg.validate()
        self.progress = progress  # callable(fraction) or None
        self.events_done: list[result.EventRow] = []
        #: the control process's virtual clock (a virtual run with events)
        self._vt_ctl: VirtualCpu | None = None
        #: the events still to carry out on the virtual clock, in order
        self._vt_pending: list[EventConfig] = []
        #: virtual ns the control process's clock had reached after its last event
        self._vt_floor = 0
        #: the next event is expected within two watchdog ticks; when GVT
        #: was last seen below it (monotonic s, virtual ns)
        self._vt_soon = False
        self._vt_gvt_seen: tuple[float, int] | None = None

    def run(self) -> Outcome:
        cfg = self.cfg
        plan = plan_run(cfg)
        cmap, nic_core, cores = list(plan.host.cpu_map), plan.host.nic_core, list(plan.host.cores)
        with IpcOwner() as owner, owner.handle_signals():
            net = Net(cfg, owner, plan)
            gate = owner.semaphore("gate", 0)
            procs: dict[str, mp.Process] = {}
            status, faults = "ok", list[str]()
            at_stop = None
            window_s = 0.0
            platform: dict = {}
            try:
                platform = measure_platform(owner)
                quotas = _split(cfg.packets, _senders(net))
                me = os.getpid()
                procs["nic"] = _CTX.Process(target=nic_main, args=(net, nic_core, me), daemon=True)
                for c in range(cfg.cpus):
                    procs[f"cpu{c}"] = _CTX.Process(
                        target=cpu_main,
                        args=(net, c, cmap[c], gate, quotas[c], me, cfg.profile_dir),
                        daemon=True,
                    )
                # Signals wait (blocked) while forking: a child takes them only
                # after setting its own handlers (cpu_main/nic_main), the
                # supervisor as soon as every worker is forked.
                held = signal.pthread_sigmask(signal.SIG_BLOCK, WORKER_SIGNALS)
                try:
                    for p in procs.values():
                        p.start()
                finally:
                    signal.pthread_sigmask(signal.SIG_SETMASK, held)
                status, faults = self._wait_ready(net, procs)
                net.bind_cpu(net.control_cpu)  # events act as the control process (rtnl)
                if status == "ok":
                    rc = net.runctl
                    for e in cfg.events:
                        if e.action == "fault" and e.at == 0:
                            # armed before the gate opens, so that the first
                            # packet already meets it (a short run may be
                            # over before the watchdog's first tick)
                            vt0 = 0 if net.virtual else None
                            self.events_done.append(
                                _event_row(e, 0.0, self._do_event(net, procs, e), vt0, vt0)
                            )
                    if net.plan.vt_control is not None:
                        self._vt_events_start(net)
                    rc[RUNCTL.t_go] = time.perf_counter_ns()
                    rc[RUNCTL.phase] = PHASE_RUN
                    net.nic_doorbell.release()  # a sleeping NIC sees each phase change
                    for _ in range(cfg.cpus):
                        gate.release()
                    if net.virtual:
                        status, faults = self._watch_virtual(net, procs)
                    else:
                        status, faults = self._watch_run(net, procs)
                    rc[RUNCTL.t_stop] = time.perf_counter_ns()
                    at_stop = _snapshot(net)
                    rc[RUNCTL.phase] = PHASE_STOP
                    net.nic_doorbell.release()
                    window_s = (rc[RUNCTL.t_stop] - rc[RUNCTL.t_go]) / 1e9
                    if status == "ok":
                        status, faults = self._drain(net, procs)
                    if net.virtual:
                        # the window is the run's virtual duration (or, with a
                        # packet budget, the virtual time of its last skb's
                        # wire finish); what the NIC put on the wire within it
                        # is final after the drain
                        self.wall_s = window_s
                        window_s, at_stop = self._virtual_window(net)
                        self.virtual_s = window_s
            except KeyboardInterrupt:
                status, faults = "interrupted", ["interrupted by Ctrl-C (SIGINT)"]
            except Terminated as e:
                status, faults = "terminated", [f"terminated by signal {e.signum}"]
            finally:
                lock_report = lock_snapshot(net)[0]
                if status != "ok":
                    net.runctl[RUNCTL.abort] = 1
                net.runctl[RUNCTL.phase] = PHASE_EXIT
                net.nic_doorbell.release()  # and abort, set just before
                dead = _reap(procs, grace_s=5.0 if status == "ok" else 0.5)
                if dead and status == "ok":
                    status = "fault"
                    faults += dead
            if at_stop is None:
                at_stop = _snapshot(net)
                window_s = max(window_s, 1e-9)
            measured = self._collect(
                net, cmap, nic_core, cores, platform, window_s, at_stop, status
            )
            checks = invariants.check_all(net, final=status == "ok")
            if status == "ok" and not invariants.ok(checks):
                status = "invariant"
            res = result.finish(
                measured,
                checks,
                status,
                faults,
                self.events_done,
                result.EXIT_CODES[status],
                lock_report if status != "ok" else None,
            )
            trace = tracedata.collect(net) if net.tracing else None
            net.close()
        return Outcome(status, res, faults, trace)

    # -- phases ------------------------------------------------------------------
    def _wait_ready(self, net, procs) -> tuple[str, list[str]]:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            dead = _dead(procs)
            if dead:
                return "fault", dead
            ready = (
                all(sd[SOFTNET.state] >= CPU_READY for sd in net.softnet)
                and net.nic[NIC.state] >= NIC_READY
            )
            if ready:
                return "ok", []
            if time.monotonic() > deadline:
                return "stalled", [f"workers not ready after {START_TIMEOUT_S:.0f} s"]
            time.sleep(TICK_S)

    def _event(self, net, procs, e) -> str:
        """Carry out one scheduled event (control context, as rtnl would).

        A lock wait inside it gives up (RunAborted) after stall_timeout: a
        stopped worker may hold the lock, and the watchdog is this loop."""
        deadline = time.monotonic() + self.cfg.stall_timeout
        space = net.locks
        abort = space.abort
        space.abort = lambda: abort() or time.monotonic() > deadline
        try:
            return self._do_event(net, procs, e)
        finally:
            space.abort = abort

    def _do_event(self, net, procs, e) -> str:
        from netq.kernel.core.dev import dev_close, dev_open, netif_set_real_num_tx_queues

        if e.action in ("kill", "stop"):
            p = procs[e.worker]
            os.kill(p.pid, signal.SIGKILL if e.action == "kill" else signal.SIGSTOP)
            return f"{e.worker} (pid {p.pid}) sent {'SIGKILL' if e.action == 'kill' else 'SIGSTOP'}"
        if e.action == "fault":
            net.runctl[RUNCTL.fault_inject] = FAULTS[e.fault]
            return f"fault {e.fault!r} armed (a deliberate model bug: the checks must catch it)"
        if e.action == "slow_nic":
            net.nic[NIC.slow_ns] = e.value
            return f"NIC slowed by {e.value} ns per packet"
        dev = net.dev_by_name[e.device]
        if e.action == "dev_close":
            return f"{dev.name} down: {dev_close(dev)} skbs purged from its qdiscs"
        if e.action == "dev_open":
            dev_open(dev)
            return f"{dev.name} up"
        netif_set_real_num_tx_queues(dev, e.value)
        return f"{dev.name} real_num_tx_queues = {e.value}"

    def _watch_run(self, net, procs) -> tuple[str, list[str]]:
        cfg = self.cfg
        t0 = time.monotonic()
        pending = sorted(
            (e for e in cfg.events if not (e.action == "fault" and e.at == 0)), key=lambda e: e.at
        )
        stall = cfg.stall_timeout
        last = [-1] * cfg.cpus
        last_move = [t0] * cfg.cpus
        nic_last, nic_move = -1, t0
        senders = _senders(net)
        quotas = _split(cfg.packets, senders)
        # A rate-limited CPU sends one skb per 1/rate s: it is stalled only if
        # it misses stall_timeout beyond two of its own intervals.
        allow = [stall + 2.0 / r if r else stall for r in cpu_rates(cfg)]
        while True:
            time.sleep(TICK_S)
            now = time.monotonic()
            while pending and now - t0 >= pending[0].at:
                e = pending.pop(0)
                try:
                    outcome = self._event(net, procs, e)
                except RunAborted:
                    return "stalled", [
                        f"event {e.action} at {e.at} s could not finish within "
                        f"{stall:.1f} s; " + _stall_text(net, [], stall)
                    ]
                self.events_done.append(
                    _event_row(e, round(time.monotonic() - t0, 3), outcome, None, None)
                )
                if e.action in ("stop", "slow_nic"):
                    # progress is judged from now on
                    last_move = [time.monotonic()] * cfg.cpus
                    nic_move = time.monotonic()
            dead = _dead(procs)
            if dead:
                return "fault", dead
            gen = [sd[SOFTNET.generated] for sd in net.softnet]
            for c in range(cfg.cpus):
                if (
                    gen[c] != last[c]
                    or not senders[c]
                    or (quotas[c] is not None and gen[c] >= quotas[c])
                ):
                    last[c], last_move[c] = gen[c], now
            delivered = net.nic[NIC.delivered]
            if delivered != nic_last or not _rings_busy(net):
                nic_last, nic_move = delivered, now
            stalled = [f"cpu{c}" for c in range(cfg.cpus) if now - last_move[c] > allow[c]]
            if now - nic_move > stall:
                stalled.append("nic")
            if stalled:
                return "stalled", [_stall_text(net, stalled, stall)]
            if cfg.packets:
                if sum(gen) >= cfg.packets:
                    return "ok", []
                if self.progress:
                    self.progress(sum(gen) / cfg.packets)
            else:
                if self.progress:
                    self.progress(min((now - t0) / cfg.duration, 1.0))
                if now - t0 >= cfg.duration:
                    return "ok", []

    def _watch_virtual(self, net, procs) -> tuple[str, list[str]]:
        """The run on the virtual clock: each CPU stops sending when its
        clock passes the duration (or its quota is sent); the run ends when
        every CPU has, and no event due before the end of a timed run is
        still pending.  Events are carried out at their virtual time
        (:meth:`_vt_event_due`).  Stalled: nothing at all moved (no skb
        generated or delivered, no clock advanced) for stall_timeout wall
        seconds."""
        cfg = self.cfg
        stall = cfg.stall_timeout
        clocks = net.region.array("vclocks")
        last, moved = None, time.monotonic()
        t0 = moved
        pending = self._vt_pending
        end = None if cfg.packets else round(cfg.duration * 1e9)
        try:
            while True:
                # an event about to be due: look often, the emulated machine
                # will wait for it
                time.sleep(VT_EVENT_TICK_S if self._vt_soon else TICK_S)
                now = time.monotonic()
                dead = _dead(procs)
                if dead:
                    return "fault", dead
                while pending:
                    done = self._vt_event_due(net, procs, pending[0], t0)
                    if done is None:
                        break
                    if isinstance(done, tuple):
                        return done
                    pending.pop(0)
                    self._vt_hold(net, pending)
                states = [sd[SOFTNET.state] for sd in net.softnet]
                due = bool(pending) and end is not None and self._vt_act_ns(pending[0]) < end
                if all(s >= CPU_STOPPED for s in states) and not due:
                    return "ok", []
                sig = (
                    sum(sd[SOFTNET.generated] for sd in net.softnet),
                    net.nic[NIC.delivered],
                    int(clocks["now"].sum()),
                )
                if sig != last:
                    last, moved = sig, now
                elif now - moved > stall:
                    del clocks
                    what = (
                        f"event {pending[0].action} at virtual {pending[0].at:g} s pending; "
                        if pending
                        else ""
                    )
                    return "stalled", [
                        f"virtual clock: {what}nothing moved for "
                        f"{stall:.1f} s; "
                        + _stall_text(net, [f"cpu{c}" for c in range(cfg.cpus)], stall)
                    ]
                if self.progress:
                    if cfg.packets:
                        self.progress(min(sig[0] / cfg.packets, 1.0))
                    else:
                        low = int(clocks["now"][: cfg.cpus].min())
                        self.progress(min(low / 1e9 / cfg.duration, 1.0))
        finally:
            if self._vt_ctl is not None:
                self._vt_ctl.done()  # nothing holds GVT for an event any more

    # -- events on the virtual clock ------------------------------------------------
    def _vt_events_start(self, net) -> None:
        """Before the start gate: the control process becomes a participant
        of the virtual-time window, holding GVT back at its first event."""
        self._vt_ctl = net.vcpu(net.plan.vt_control)
        self._vt_pending = sorted(
            (e for e in self.cfg.events if not (e.action == "fault" and e.at == 0)),
            key=lambda e: e.at,
        )
        self._vt_hold(net, self._vt_pending)

    def _vt_act_ns(self, e) -> int:
        """The virtual time the control process carries out ``e``: its
        ``at``, or later if an earlier event's work took it past that."""
        return max(round(e.at * 1e9), self._vt_floor)

    def _vt_hold(self, net, pending) -> None:
        """Hold GVT back so that no participant makes a shared access after
        the next event's virtual time before the event is done (the window
        lets a participant at ``t`` pass when GVT >= t - slack); nothing to
        hold when no event is pending."""
        ctl = self._vt_ctl
        assert ctl is not None
        if not pending:
            ctl.done()
            return
        ctl.now = self._vt_act_ns(pending[0]) - self.cfg.slack_ns
        ctl.publish()

    def _vt_event_due(self, net, procs, e, t0):
        """Carry out ``e`` if every other participant that runs (or waits
        for a lock) has reached its virtual time: returns None when not yet,
        a ("stalled", faults) outcome when it could not finish, else True.

        Every access before the event's time ``A`` is then done (a clock is
        the time of its owner's next access) and none after it has been
        made (GVT was held at ``A - slack``); a participant asleep on an
        event holds nothing back and resumes at its waker's time.  The
        control process then acts at ``A`` as emulated CPU ``control_cpu``:
        its lock acquires are granted in virtual time and its work charged
        to its clock, which is the event's done time."""
        ctl = self._vt_ctl
        assert ctl is not None
        at = self._vt_act_ns(e)
        if not ctl.may_act(at):  # ties at ``at`` go by rank, as at the window
            g = ctl.gvt()
            if g is None:  # the others finished meanwhile: look again at once
                g = at
            # soon: at the pace GVT has been moving, within two ticks
            t, prev = time.monotonic(), self._vt_gvt_seen
            self._vt_soon = (
                prev is not None
                and t > prev[0]
                and (at - g) * (t - prev[0]) <= (g - prev[1]) * 2 * TICK_S
            )
            self._vt_gvt_seen = (t, g)
            return None
        self._vt_soon, self._vt_gvt_seen = False, None
        ctl.now = at
        ctl.publish()
        deadline = time.monotonic() + self.cfg.stall_timeout
        space = net.locks
        abort, vabort = space.abort, ctl.abort
        space.abort = lambda: abort() or time.monotonic() > deadline
        ctl.abort = lambda: vabort() or time.monotonic() > deadline
        try:
            if e.action == "slow_nic":
                # packets whose wire starts from now on are slowed (the NIC
                # reads this before NIC.slow_ns changes)
                net.vt_nic[VT_NIC.slow_from] = at
            outcome = self._do_event(net, procs, e)
        except RunAborted:
            return "stalled", [
                f"event {e.action} at virtual {e.at:g} s could not finish within "
                f"{self.cfg.stall_timeout:.1f} s; " + _stall_text(net, [], self.cfg.stall_timeout)
            ]
        finally:
            space.abort, ctl.abort = abort, vabort
        self._vt_floor = ctl.now
        self.events_done.append(
            _event_row(e, round(time.monotonic() - t0, 3), outcome, at, ctl.now)
        )
        return True

    def _virtual_window(self, net) -> tuple[float, dict]:
        """The measured window of a virtual run: its duration in virtual
        seconds (with a packet budget: from the start to the last skb's
        wire finish), and what the NIC put on the wire within it."""
        win = net.vt_window
        n = net.ncpus
        if net.cfg.packets:
            span = max(int(net.vt_nic[VT_NIC.last_finish]), 1) / 1e9
        else:
            span = net.cfg.duration
        return span, {
            "delivered": int(net.runctl[RUNCTL.nic_delivered_at_stop]),
            "by_cpu": [int(win[c]) for c in range(n)],
            "queue_packets": [int(win[n + t.index]) for t in net.txqs],
        }

    def _drain(self, net, procs) -> tuple[str, list[str]]:
        stall = self.cfg.stall_timeout
        last_sig, last_move = None, time.monotonic()
        quiet = 0
        while True:
            time.sleep(TICK_S)
            dead = _dead(procs)
            if dead:
                return "fault", dead
            stopped = all(sd[SOFTNET.state] >= CPU_STOPPED for sd in net.softnet)
            fl = invariants.in_flight(net)
            busy = fl["qdiscs"] + fl["rings"] + fl["defer"]
            sched = sum(
                1
                for q in net.qdiscs
                if q.f[QDISC.state] >> QDISC_STATE_SCHED & 1 or q.f[QDISC.running]
            )
            pending = sum(sd[SOFTNET.oq_tail] - sd[SOFTNET.oq_head] for sd in net.softnet)
            if stopped and busy == 0 and sched == 0 and pending == 0:
                quiet += 1
                if quiet >= 3:
                    return "ok", []
                continue
            quiet = 0
            sig = (
                busy,
                net.nic[NIC.delivered],
                sched,
                pending,
                tuple(sd[SOFTNET.net_tx_action] for sd in net.softnet),
            )
            now = time.monotonic()
            if sig != last_sig:
                last_sig, last_move = sig, now
            elif now - last_move > stall:
                what = (
                    f"drain made no progress for {stall:.1f} s: {busy} skbs queued "
                    f"({fl['qdiscs']} in qdiscs, {fl['rings']} in rings), {sched} qdiscs "
                    f"scheduled/running, {pending} on output queues"
                )
                if busy and not sched and not pending:
                    what += " — packets stuck in a qdisc that nobody will run"
                return "stalled", [what + "; " + _stall_text(net, [], stall)]

    # -- results -----------------------------------------------------------------
    def _collect(
        self, net, cmap, nic_core, cores, platform, window_s, at_stop, status
    ) -> result.Measured:
        cfg = self.cfg
        delivered_window = at_stop["delivered"]
        cpu_ns = sum(sd[SOFTNET.cpu_ns] for sd in net.softnet)
        cpus: list[result.CpuRow] = []
        for c, sd in enumerate(net.softnet):
            cpus.append(
                {
                    "cpu": c,
                    "host_core": cmap[c],
                    "pid": int(sd[SOFTNET.pid]),
                    "state": CPU_STATE_NAMES[sd[SOFTNET.state]],
                    "generated": int(sd[SOFTNET.generated]),
                    "delivered_in_window": int(at_stop["by_cpu"][c]),
                    "pps": at_stop["by_cpu"][c] / window_s if window_s else 0.0,
                    "cpu_ns": int(sd[SOFTNET.cpu_ns]),
                    "cpu_ns_per_packet": sd[SOFTNET.cpu_ns] / at_stop["by_cpu"][c]
                    if at_stop["by_cpu"][c]
                    else None,
                    "nvcsw": int(sd[SOFTNET.nvcsw]),
                    "nivcsw": int(sd[SOFTNET.nivcsw]),
                }
            )
        nprocs = cfg.cpus + 1
        blob_len = net.nic[NIC.lat_blob_len]
        off = net.nic_blob_off
        blob = bytes(net.region.mm[off : off + blob_len]) if blob_len else None
        return {
            "version": result.RESULT_VERSION,
            "name": cfg.name,
            "setup": {
                "cpus": cfg.cpus,
                "cpu_map": cmap,
                "nic_core": nic_core,
                "host_cores": cores,
                "processes": nprocs,
                "shared_cores": nprocs > len(cores),
                "strategy": net.strategy,
                "pfifo_fast_nolock": net.nolock,
                "what_if": what_if_reasons(cfg),
                "profile": {
                    "name": net.profile.name,
                    "recursion_limit": net.profile.recursion_limit,
                    "dev_tx_weight": net.profile.dev_tx_weight,
                    "tx_hash": net.profile.tx_hash,
                    "source": net.profile.source,
                },
                "lock": {
                    "fairness": net.lock_policy.fairness,
                    "waiting": net.lock_policy.waiting,
                    "spin_ns": net.lock_policy.spin_ns,
                    "yield_spin": net.lock_policy.yield_spin,
                    "why": net.lock_wait_reason,
                },
                "costs": vars(cfg.costs).copy(),
                "devices": [_device_setup(net, d) for d in net.devices],
                "device_loops": cfg.device_loops(),
                "traffic": [vars(t).copy() for t in cfg.traffic],
                "platform": platform,
                "nic": {"batch": cfg.nic_batch, "coalesce_us": cfg.nic_coalesce_us},
                "seed": cfg.seed,
                "duration_s": cfg.duration,
                "packets": cfg.packets,
                "hashrnd": net.hashrnd,
                "clock": cfg.clock,
                "slack_ns": cfg.slack_ns if cfg.virtual else None,
                "vcosts": dataclasses.asdict(net.costs) if cfg.virtual else None,
            },
            "window_s": window_s,
            "generated": int(sum(sd[SOFTNET.generated] for sd in net.softnet)),
            "delivered": int(net.nic[NIC.delivered]),
            "delivered_in_window": int(delivered_window),
            "pps": delivered_window / window_s if window_s else 0.0,
            "pps_by_cpu": [c["pps"] for c in cpus],
            "cpu_ns_per_packet": cpu_ns / delivered_window if delivered_window else None,
            "cpus": cpus,
            "queues": result.queue_rows(net, window_s, at_stop),
            "qdiscs": result.qdisc_rows(net),
            "locks": result.lock_rows(net),
            "drops": result.drops(net),
            "messages": result.messages(net),
            "latency": result.latency(blob),
            "mechanism": result.mechanism(net, delivered_window),
            "nic": result.nic_row(net),
            "vt": result.vt_stats(net, self.wall_s, self.virtual_s),
        }


def _device_setup(net, d) -> result.DeviceSetup:
    from netq.kernel.core.xps import xps_cpus_show, xps_rxqs_show

    c = d.cfg
    out: result.DeviceSetup = {
        "name": d.name,
        "kind": d.kind,
        "tx_queues": c.tx_queues,
        "real_num_tx_queues": d.real_num_tx_queues,
        "lltx": d.lltx,
    }
    if not c.is_virtual:
        out["ring_size"] = c.ring_size
        out["tx_queue_len"] = c.tx_queue_len
        out["line_rate_bps"] = c.line_rate_bps
        out["line_rate_pps"] = c.line_rate_pps
        out["xps"] = {q: xps_cpus_show(net, d, q) for q in range(c.tx_queues)}
        if d.xps_rxqs_needed:
            out["rx_queues"] = d.num_rx_queues
            out["xps_rxqs"] = {q: xps_rxqs_show(net, d, q) for q in range(c.tx_queues)}
        out["irq_cpus"] = [int(t.f[NETDEV_QUEUE.irq_cpu]) for t in d.txqs]
    else:
        out["lower"] = d.lower.name
    return out


def cpu_rates(cfg: RunConfig) -> list[float]:
    """Packets/s each emulated CPU is configured to send (0: floods or sends
    nothing), as cpu.Generator computes it: the sum of its groups' rates, 0
    if any of its groups floods."""
    out = []
    for c in range(cfg.cpus):
        rates = [t.rate_pps for t in cfg.traffic if t.cpus is None or c in t.cpus]
        out.append(0.0 if not rates or 0.0 in rates else float(sum(rates)))
    return out


def _senders(net) -> list[bool]:
    """Which emulated CPUs have sockets (the others only run softirqs)."""
    has = [False] * net.ncpus
    for _, c, _ in net.sock_groups:
        has[c] = True
    return has


def _split(total: int, senders: list[bool]) -> list[int | None]:
    """The packet budget shared over the CPUs that send: each CPU's quota,
    or None for every CPU when there is no budget (``total`` 0: the run is
    timed).  A quota of 0 means "send nothing" -- a budget smaller than the
    number of sending CPUs leaves the last ones without packets -- and is
    never read as "unlimited"."""
    if not total:
        return [None] * len(senders)
    idx = [c for c, s in enumerate(senders) if s]
    out: list[int | None] = [0] * len(senders)
    for k, c in enumerate(idx):
        out[c] = total // len(idx) + (1 if k < total % len(idx) else 0)
    return out


def _snapshot(net) -> dict:
    return {
        "delivered": int(net.nic[NIC.delivered]),
        "by_cpu": [int(x) for x in net.nic_by_cpu],
        "queue_packets": [int(t.f[NETDEV_QUEUE.nic_packets]) for t in net.txqs],
    }


def _rings_busy(net) -> bool:
    return any(len(t.ring) for t in net.txqs if t.ring is not None)


def _event_row(
    e: EventConfig, done_at: float, outcome: str, vt_at: int | None, vt_done: int | None
) -> result.EventRow:
    """The result's row of an event carried out: ``done_at`` wall seconds
    after the start; ``vt_at``/``vt_done`` its virtual ns (None on the wall
    clock)."""
    return {
        "at": e.at,
        "action": e.action,
        "device": e.device,
        "worker": e.worker,
        "value": e.value,
        "fault": e.fault,
        "done_at": done_at,
        "result": outcome,
        "vt_at_ns": vt_at,
        "vt_done_ns": vt_done,
    }


def _dead(procs) -> list[str]:
    out = []
    for name, p in procs.items():
        code = p.exitcode if p.pid is not None else None
        if code is not None and code != 0:
            how = (
                f"killed by signal {-code} ({signal.Signals(-code).name})"
                if code < 0
                else f"exit code {code}"
            )
            out.append(f"{name} (pid {p.pid}) died: {how}")
    return out


def _reap(procs, grace_s: float) -> list[str]:
    """Join every worker; kill what does not exit within ``grace_s``."""
    deadline = time.monotonic() + grace_s
    started = {name: p for name, p in procs.items() if p.pid is not None}  # Ctrl-C during start
    for p in started.values():
        p.join(max(0.0, deadline - time.monotonic()))
    out = []
    for name, p in started.items():
        if p.is_alive():
            os.kill(p.pid, signal.SIGCONT)
            os.kill(p.pid, signal.SIGKILL)
            p.join(5)
            out.append(f"{name} (pid {p.pid}) did not exit and was killed")
    return out


def deadlock_cycles(holders: Sequence[Mapping[str, Any]], waiting: dict[int, str]) -> list[str]:
    """Cycles in the wait-for graph: CPU -> lock it waits for -> owner CPU.

    ``holders`` as LockSpace.holders() gives them; ``waiting`` maps a CPU to
    the lock it waits for.  Returns one line per cycle, e.g. "cpu0 waits for
    A held by cpu1; cpu1 waits for B held by cpu0" (an ABBA deadlock, such
    as two CPUs entering a loop of non-LLTX devices at different points)."""
    owner = {h["lock"]: h["owner_cpu"] for h in holders if h["owner_cpu"] >= 0}
    out, seen = [], set()
    for start in waiting:
        path: list[int] = []
        cpu: int | None = start
        closed = False
        while cpu in waiting:
            if cpu in path:
                closed = True
                break
            path.append(cpu)
            cpu = owner.get(waiting[cpu])
            if cpu is None:
                break
        if closed and cpu is not None and frozenset(path[path.index(cpu) :]) not in seen:
            cyc = path[path.index(cpu) :]
            seen.add(frozenset(cyc))
            steps = [f"cpu{c} waits for {waiting[c]!r} held by cpu{owner[waiting[c]]}" for c in cyc]
            out.append("deadlock: " + "; ".join(steps))
    return out


def lock_snapshot(net, tries: int = 20) -> tuple[list[result.LockHolder], bool]:
    """Every held or waited-for lock, read consistently; and whether it was.

    The lock records change under the reader (a waiter becomes the owner
    between the reads of ``owner_cpu`` and of its waiter mark), so the
    records are read until two reads in a row agree, as a seqlock reader
    retries (at most ``tries`` times: a run that is not stalled may never
    settle).  A CPU listed as both owner and waiter of one lock is the
    owner: it took the lock and has not cleared its waiter mark yet."""
    prev = net.locks.holders()
    stable = False
    for _ in range(tries):
        cur = net.locks.holders()
        if cur == prev:
            stable = True
            break
        prev = cur
    for h in prev:
        h["waiters"] = [c for c in h["waiters"] if c != h["owner_cpu"]]
    return prev, stable


def process_state(pid: int) -> str:
    """'stopped' (SIGSTOP, state T/t), 'dead' (gone or zombie) or 'alive',
    from /proc/PID/stat."""
    st = proc_state(pid) if pid > 0 else None
    if st is None or st in "ZX":
        return "dead"
    return "stopped" if st in "Tt" else "alive"


def _stall_text(net, stalled: list[str], secs: float) -> str:
    parts = []
    if stalled:
        parts.append(f"no progress for {secs:.1f} s from {', '.join(stalled)}")
    holders, stable = lock_snapshot(net)
    if not stable:
        parts.append("lock state still changing while read (locks listed as last read)")
    waiting = {}
    for h in holders:
        for c in h["waiters"]:
            waiting[c] = h["lock"]
    parts += deadlock_cycles(holders, waiting)
    for c, sd in enumerate(net.softnet):
        pid = int(sd[SOFTNET.pid])
        proc = process_state(pid)
        state = CPU_STATE_NAMES[sd[SOFTNET.state]] if proc == "alive" else f"{proc} (process)"
        parts.append(f"cpu{c} pid {pid} {state} generated {sd[SOFTNET.generated]}")
    nic_pid = int(net.nic[NIC.pid])
    if process_state(nic_pid) != "alive":
        parts.append(f"nic pid {nic_pid} {process_state(nic_pid)} (process)")
    for h in holders:
        owner = (
            "none"
            if h["owner_pid"] is None
            else f"cpu {h['owner_cpu']} (pid {h['owner_pid']}, {process_state(h['owner_pid'])})"
        )
        parts.append(f"lock {h['lock']!r}: owner {owner}, waiters {h['waiters']}")
    return "; ".join(parts)
