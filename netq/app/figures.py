"""The kernel's own figures that netq's presets and studies are set beside.

One place for each number, with where it comes from (the commit whose
message reports it, and what was measured there).  On the wall clock netq's
magnitudes are the host's (Python processes on a few cores are not a
240-thread server): there the presets' reports and the studies' tables put
these beside netq's measurements so that the *direction* and the
*mechanism* can be compared.  On the virtual clock the magnitudes are the
emulated machine's, and docs/studies/busylock-commit.toml and
defer-list.toml measure them against these (docs/virtual-time.md).

Users: :mod:`netq.app.presets` (the ``generations`` preset's ratios),
:mod:`netq.app.report` (the "kernel's figure" column, the ratio line), and
:mod:`netq.app.sweep` (the generations study's ``kernel`` JSON, its table and
the kernel's line in its plot).
"""

from __future__ import annotations

from typing import Any

# -- busylock: commit 79640a4ca695 (2.6.36), "net: add additional lock to qdisc to
# increase throughput"; its message reports a dual quad-core E5450 with a tg3
# NIC and 32 UDP senders on one TX queue, before and after the busylock.
BUSYLOCK_COMMIT = "79640a4ca695"
BUSYLOCK_SENDERS = 32
#: delivered packets/s without the busylock (every sender takes root_lock)
ROOTLOCK_PPS = 50e3
#: delivered packets/s with the busylock
BUSYLOCK_PPS = 600e3

# -- lockless pfifo_fast (TCQ_F_NOLOCK, 4.16) and its empty-queue bypass, commit
# ba27b4cdaaa6 (5.14); its message reports pktgen on an mq device, 1/2/4 threads.
NOLOCK_BYPASS_COMMIT = "ba27b4cdaaa6"
#: kpps at 1, 2 and 4 pktgen threads, without and with the bypass
NOLOCK_KPPS = (2465, 4304, 7898)
NOLOCK_BYPASS_KPPS = (2889, 5188, 9589)

# -- the defer_list, commit 100dfa74cad9 (6.19): senders push onto a lock-free
# q->defer_list and one of them splices it and runs the qdisc.  Its message
# reports 240 UDP senders on a 30-queue device under FQ, busylock (6.18) against
# defer_list.
DEFER_COMMIT = "100dfa74cad9"
DEFER_SETUP = "240 senders, 30 queues, FQ"
#: delivered packets/s, busylock (6.18) and defer_list
DEFER_BUSYLOCK_PPS = 16e6
DEFER_PPS = 29e6
#: system CPU share, busylock (6.18) and defer_list
DEFER_BUSYLOCK_SYSTEM_CPU = 0.52
DEFER_SYSTEM_CPU = 0.24
#: defer / busylock: pps 1.81x, system CPU 0.46x, system CPU per packet
#: (24% / 29 Mpps) / (52% / 16 Mpps) = 0.25x
DEFER_PPS_RATIO = round(DEFER_PPS / DEFER_BUSYLOCK_PPS, 2)
DEFER_SYSTEM_CPU_RATIO = round(DEFER_SYSTEM_CPU / DEFER_BUSYLOCK_SYSTEM_CPU, 2)
DEFER_CPU_PER_PACKET_RATIO = round(
    (DEFER_SYSTEM_CPU / DEFER_PPS) / (DEFER_BUSYLOCK_SYSTEM_CPU / DEFER_BUSYLOCK_PPS), 2
)


def _pct(share: float) -> str:
    return f"{share * 100:.0f}%"


def _mpps(pps: float) -> str:
    return f"{pps / 1e6:g} Mpps"


#: the generations study's ``kernel`` (written into its JSON, drawn in its plot)
KERNEL_DEFER: dict[str, Any] = {
    "commit": DEFER_COMMIT,
    "qdisc": "fq",
    "pps_busylock": DEFER_BUSYLOCK_PPS,
    "pps_defer": DEFER_PPS,
    "pps_ratio": DEFER_PPS_RATIO,
    "system_cpu_busylock": DEFER_BUSYLOCK_SYSTEM_CPU,
    "system_cpu_defer": DEFER_SYSTEM_CPU,
    "system_cpu_ratio": DEFER_SYSTEM_CPU_RATIO,
    "cpu_per_packet_ratio": DEFER_CPU_PER_PACKET_RATIO,
    "text": (
        f"{DEFER_PPS_RATIO}x pps: {DEFER_BUSYLOCK_PPS / 1e6:g} -> {_mpps(DEFER_PPS)}; "
        f"system CPU {_pct(DEFER_BUSYLOCK_SYSTEM_CPU)} -> {_pct(DEFER_SYSTEM_CPU)}, i.e. "
        f"{DEFER_CPU_PER_PACKET_RATIO}x CPU per packet; commit {DEFER_COMMIT}"
    ),
}

#: the line under the generations preset's ratios (:func:`netq.app.report.comparison`)
DEFER_KERNEL_LINE = (
    f"kernel (FQ, 240 senders): pps {DEFER_PPS_RATIO}x, CPU per packet "
    f"{DEFER_CPU_PER_PACKET_RATIO}x (system CPU {_pct(DEFER_BUSYLOCK_SYSTEM_CPU)} -> "
    f"{_pct(DEFER_SYSTEM_CPU)} while pps rose {DEFER_BUSYLOCK_PPS / 1e6:g} -> "
    f"{_mpps(DEFER_PPS)})"
)

_BUSYLOCK_618 = (
    f"{_mpps(DEFER_BUSYLOCK_PPS)}, system CPU {_pct(DEFER_BUSYLOCK_SYSTEM_CPU)} ({DEFER_SETUP})"
)

#: the kernel's figure beside each variant of the generations preset (by label)
ANCHORS = {
    "rootlock 2.6.37 (what-if)": (
        f"~{ROOTLOCK_PPS / 1e3:g} kpps ({BUSYLOCK_SENDERS} UDP senders, tg3; "
        f"before {BUSYLOCK_COMMIT})"
    ),
    "busylock 3.13": f"~{BUSYLOCK_PPS / 1e3:g} kpps (same box, busylock)",
    "nolock 4.19": f"1/2/4 threads {'/'.join(map(str, NOLOCK_KPPS))} kpps (pktgen, no bypass)",
    "nolock+bypass 6.18": (
        f"{'/'.join(map(str, NOLOCK_BYPASS_KPPS))} kpps ({NOLOCK_BYPASS_COMMIT})"
    ),
    "nolock+bypass 6.19": "as 6.18: the defer_list is not on the NOLOCK path",
    "fq busylock 6.18": _BUSYLOCK_618,
    "fq defer 6.19": f"{_mpps(DEFER_PPS)}, system CPU {_pct(DEFER_SYSTEM_CPU)} ({DEFER_COMMIT})",
}
