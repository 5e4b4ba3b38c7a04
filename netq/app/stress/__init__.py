"""``python -m netq.run stress``: the CI stress job.

Runs seeded random configurations of the emulated transmit path one after
another until a time budget is used up, and checks after each run what
README.md promises ("Invariants"): every skb delivered or dropped for a named reason, the
qdisc identities, flow order, no lock held, consistent lock statistics, no
worker crash, no stall (watchdog), and no IPC object or child process left
behind.  With ``--chaos`` it adds runs that break something on purpose
(``RunConfig.events``): a killed worker, a stopped worker past the watchdog, a
slow NIC, ``ethtool -L`` and ``ip link set down``/``up`` mid-run.  Each chaos
kind has an expected status known in advance; anything else is a failure.
About one random configuration in five runs on the virtual clock
(``clock = "virtual"``, a few virtual milliseconds or, when every CPU floods,
sometimes a small packet budget; a random window slack), so the lockstep of
clocks is checked for the same invariants and leaks as the wall clock; chaos
runs stay on the wall clock (their events and watchdog timings are in wall
seconds).

Why it is built this way:

* **Reproducible from the seed.**  Configuration *i* is a pure function of
  (seed, i, --chaos, --run-seconds): :func:`generate` seeds its own
  ``random.Random`` with a string of those values, so re-running one
  configuration (``--only I``) does not need the ones before it.  Every
  configuration gets its own ``RunConfig.seed`` (hashrnd, socket hashes,
  lengths), so a rerun picks the same queues; the OS schedule is the only
  thing that varies.  ``cpu_map`` names only host cores this process may use,
  so a configuration is host-dependent there and nowhere else.  The mapping
  from seed to configurations holds for one version of netq and of this file
  (a new profile, say, changes it): the TOML a failure writes does not.
* **Every generated config validates.**  The generator builds only what
  :meth:`RunConfig.validate` accepts; if validation rejects one, that is a bug
  here, and it is reported as such (not skipped).
* **Bounded.**  Each run is short (``--run-seconds`` of traffic, or a packet
  budget sized from the CPUs' rates), drains in well under a second (queue
  lengths are sized from the line rate), and has a hard limit: a run that
  outlives it (the supervisor itself hung) is ended with SIGALRM, which the
  supervisor treats like SIGTERM (report, cleanup) and this job as a failure.
  No run starts when its estimate would overrun ``--budget`` (at least one
  run always starts).
* **In process.**  The supervisor runs in this process, so every IPC object a
  run creates carries this process's pid (``/netq.<pid>.…``); after each run
  the job looks for such objects in /dev/shm and for child processes, reports
  them as failures and removes them so that later runs are not blamed.
* **Failures come with a reproducer**: the configuration as TOML that
  ``python -m netq.run --config FILE`` runs, written next to the JUnit/JSON
  output (else to a temporary directory), and the command lines.

Switches for configurations netq once mishandled (both fixed; kept so a
regression can be chased with the generator):

* ``COVER_EVERY_CPU``: give the first traffic group every CPU.  A CPU
  without sockets used to crash; it now only serves softirqs, so the
  generator leaves some CPUs without sockets.
* ``LLTX_NOQUEUE_PHYS``: a physical device with ``lltx = true`` and
  ``qdisc = "noqueue"`` let several CPUs write one single-producer TX ring;
  validation now rejects it, so the generator never makes it.

Not a netq bug, but a trap for a generator: a loop of non-LLTX virtual
devices entered at two devices by two CPUs deadlocks on its _xmit_locks
(ABBA), in the kernel as here; see :func:`_no_lock_order_cycle`.

The package, one job per module: :mod:`.generate` (configuration *i* of a
seed), :mod:`.toml` (a configuration as an experiment file), :mod:`.check`
(what a run must end in), :mod:`.job` (running, checking, reporting),
:mod:`.junit` (JUnit XML and JSON), :mod:`.cli` (the command line).
"""

from __future__ import annotations

from .check import Record, check, estimate_s, summary_line
from .cli import build_parser, dry_run, main
from .generate import (
    CHAOS_EXPECT,
    CHAOS_KINDS,
    Case,
    GeneratorBug,
    case_kind,
    cpu_rates,
    describe,
    generate,
    path_verdict,
)
from .job import Job
from .junit import write_json, write_junit
from .toml import to_toml

__all__ = [
    "CHAOS_EXPECT",
    "CHAOS_KINDS",
    "Case",
    "GeneratorBug",
    "Job",
    "Record",
    "build_parser",
    "case_kind",
    "check",
    "cpu_rates",
    "describe",
    "dry_run",
    "estimate_s",
    "generate",
    "main",
    "path_verdict",
    "summary_line",
    "to_toml",
    "write_json",
    "write_junit",
]
