"""Names and lifetimes of the POSIX IPC objects a run creates.

Every shared-memory segment and semaphore netq creates is named

    /netq.<owner pid>.<random token>.<what>

so that (a) two runs on one machine (pytest -n, two CI jobs) never meet,
(b) ``ls /dev/shm`` shows at a glance what belongs to netq (semaphores appear
there as ``sem.netq.…``), and (c) leftovers of a crashed run can be removed
without touching a live run: the owner pid is in the name, and a name whose
owner is still alive is never removed (:func:`cleanup_stale`).

All objects are created ``O_CREX`` with mode 0600 (owner only).  The
:class:`IpcOwner` that created an object is the only one that unlinks it; a
forked child inherits the Python object but not the duty (the owner pid is
checked), so a worker that exits never pulls a segment from under its siblings.
"""

from __future__ import annotations

import atexit
import os
import re
import secrets
import signal
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import posix_ipc

if TYPE_CHECKING:
    from typing import Self  # only for the checker: setup.cfg still allows 3.10

PREFIX = "netq"
DEV_SHM = "/dev/shm"
MODE = 0o600

# ``netq.<pid>.<token>.<what>`` with an optional ``sem.`` in /dev/shm.
_NAME_RE = re.compile(r"^(?:sem\.)?netq\.(\d+)\.([0-9a-f]+)\.")


class Terminated(BaseException):
    """Raised in the owner by SIGTERM/SIGHUP so that ``finally`` blocks run.

    A BaseException (like KeyboardInterrupt) so that ordinary ``except
    Exception`` handlers do not swallow it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"terminated by signal {signum}")
        self.signum = signum


class IpcOwner:
    """Creates, and is the only one to remove, the IPC objects of one run.

    Use as a context manager: every segment and semaphore made through it is
    unlinked on normal exit, on an exception, on Ctrl-C and (with
    :meth:`handle_signals`) on SIGTERM/SIGHUP.  ``atexit`` is a last resort
    for an owner that was never closed.
    """

    def __init__(self, token: str | None = None) -> None:
        self.pid = os.getpid()
        self.token = token or secrets.token_hex(6)
        self.prefix = f"/{PREFIX}.{self.pid}.{self.token}."
        self._segments: list[posix_ipc.SharedMemory] = []
        self._semaphores: list[posix_ipc.Semaphore] = []
        self._used: dict[str, int] = {}
        self._closed = False
        atexit.register(self.close)

    # -- creation -----------------------------------------------------------
    def name(self, what: str) -> str:
        """A fresh name for ``what``: a repeated ``what`` gets a numeric suffix,
        so independent parts of a run (two lock spaces) never collide."""
        n = self._used.get(what, 0)
        self._used[what] = n + 1
        return self.prefix + (what if n == 0 else f"{what}.{n}")

    def segment(self, what: str, size: int) -> posix_ipc.SharedMemory:
        """Create a new owner-only shared-memory segment of ``size`` bytes."""
        self._check_open()
        shm = posix_ipc.SharedMemory(self.name(what), posix_ipc.O_CREX, MODE, size)
        self._segments.append(shm)
        return shm

    def semaphore(self, what: str, initial: int) -> posix_ipc.Semaphore:
        """Create a new owner-only named semaphore with ``initial`` value."""
        self._check_open()
        sem = posix_ipc.Semaphore(self.name(what), posix_ipc.O_CREX, MODE, initial)
        self._semaphores.append(sem)
        return sem

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("IpcOwner is closed")
        if os.getpid() != self.pid:
            raise RuntimeError("only the owning process creates IPC objects")

    # -- removal ------------------------------------------------------------
    def names(self) -> list[str]:
        return [s.name for s in self._segments] + [s.name for s in self._semaphores]

    def close(self) -> None:
        """Unlink every object this owner created (idempotent; owner only).

        Unlinking removes the name; mappings that are still open in some
        process stay valid until they are unmapped, as with any POSIX object.
        """
        if self._closed or os.getpid() != self.pid:
            return
        self._closed = True
        for sem in self._semaphores:
            try:
                sem.unlink()
            except posix_ipc.ExistentialError:
                pass
            try:
                sem.close()
            except posix_ipc.Error:
                pass
        for shm in self._segments:
            try:
                shm.unlink()
            except posix_ipc.ExistentialError:
                pass
        self._semaphores.clear()
        self._segments.clear()
        atexit.unregister(self.close)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def handle_signals(self) -> _SignalScope:
        """Turn SIGTERM and SIGHUP into :class:`Terminated` while in scope."""
        return _SignalScope()


def terminate_on_signals() -> _SignalScope:
    """SIGTERM and SIGHUP raise :class:`Terminated` while in scope (for a
    command that owns no IPC objects yet, or several owners in turn)."""
    return _SignalScope()


class _SignalScope:
    _SIGNALS = (signal.SIGTERM, signal.SIGHUP)

    def __enter__(self) -> Self:
        self._old = {}
        for s in self._SIGNALS:
            self._old[s] = signal.signal(s, _raise_terminated)
        return self

    def __exit__(self, *exc: object) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)


#: a terminating signal that arrived and has not been raised yet (see below)
_pending_signal = 0


def _raise_terminated(signum: int, frame: object) -> None:
    # Remembered as well as raised: posix_ipc turns an exception raised by a
    # signal handler during a semaphore wait into SignalError, and a caller
    # that retries on SignalError must then call raise_pending_signal().
    global _pending_signal
    _pending_signal = signum
    raise Terminated(signum)


def raise_pending_signal() -> None:
    """Raise Terminated if SIGTERM/SIGHUP arrived during a semaphore wait."""
    global _pending_signal
    if _pending_signal:
        signum, _pending_signal = _pending_signal, 0
        raise Terminated(signum)


@dataclass(frozen=True)
class Leftover:
    """An IPC object in /dev/shm named like netq's."""

    entry: str  # the name as it appears in /dev/shm
    pid: int
    token: str

    @property
    def is_semaphore(self) -> bool:
        return self.entry.startswith("sem.")

    @property
    def posix_name(self) -> str:
        return "/" + (self.entry[4:] if self.is_semaphore else self.entry)

    def unlink(self) -> bool:
        """Remove the name (whoever owns it); False if it was already gone."""
        try:
            if self.is_semaphore:
                posix_ipc.unlink_semaphore(self.posix_name)
            else:
                posix_ipc.unlink_shared_memory(self.posix_name)
            return True
        except posix_ipc.ExistentialError:
            return False


def netq_objects(dev_shm: str = DEV_SHM) -> Iterator[Leftover]:
    """Every netq-named object currently in /dev/shm (live runs included)."""
    try:
        entries = os.listdir(dev_shm)
    except FileNotFoundError:
        return
    for entry in sorted(entries):
        m = _NAME_RE.match(entry)
        if m:
            yield Leftover(entry, int(m.group(1)), m.group(2))


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is dead for our purposes.
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def cleanup_stale(dev_shm: str = DEV_SHM) -> list[str]:
    """Remove netq objects whose owner process is gone; return their names.

    Objects of live runs (owner pid alive) are never touched.
    """
    return [obj.entry for obj in netq_objects(dev_shm) if not pid_alive(obj.pid) and obj.unlink()]


def stale_processes(dev_shm: str = DEV_SHM) -> dict[int, str]:
    """Processes that are provably left over from a dead netq run.

    A process is one if it maps (``/proc/PID/maps``) a netq object -- named
    or already unlinked ("(deleted)") -- whose owner pid is gone: only the
    run's owner and the workers it forked map its objects, so such a process
    is a worker that outlived its supervisor.  A process of a live run (its
    objects' owner alive) is never listed, nor this process.  Returns pid ->
    the object that proves it."""
    me = os.getpid()
    prefix = dev_shm.rstrip("/") + "/"
    out: dict[int, str] = {}
    for p in os.listdir("/proc"):
        if not p.isdigit() or int(p) == me:
            continue
        try:
            with open(f"/proc/{p}/maps") as f:
                maps = f.read()
        except OSError:  # gone, or not ours to read
            continue
        for line in maps.splitlines():
            i = line.find(prefix)
            if i < 0:
                continue
            entry = line[i + len(prefix) :].split()[0]
            m = _NAME_RE.match(entry)
            if m and int(m.group(1)) != int(p) and not pid_alive(int(m.group(1))):
                out[int(p)] = entry
                break
    return out


def kill_processes(pids: Iterable[int], wait_s: float = 5.0) -> None:
    """SIGKILL each pid (SIGCONT first, so a stopped one goes too) and wait,
    at most ``wait_s`` in all, until each is gone; a child of this process is
    reaped, so it leaves no zombie."""
    pids = list(pids)
    for pid in pids:
        for sig in (signal.SIGCONT, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + wait_s
    for pid in pids:
        while time.monotonic() < deadline:
            try:
                if os.waitpid(pid, os.WNOHANG)[0]:
                    break
            except ChildProcessError:  # not ours to reap: gone when not alive
                if not pid_alive(pid):
                    break
            time.sleep(0.01)


def end_stale_processes(dev_shm: str = DEV_SHM, wait_s: float = 5.0) -> list[str]:
    """SIGKILL every :func:`stale_processes` process and wait until each is
    gone (:func:`kill_processes`); one line per process."""
    procs = stale_processes(dev_shm)
    kill_processes(procs, wait_s)
    return [
        f"pid {pid} (mapped {entry}){'' if not pid_alive(pid) else ' still alive'}"
        for pid, entry in sorted(procs.items())
    ]


def child_pids(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (zombies included), from /proc."""
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    out.append(int(p))
            except (OSError, IndexError, ValueError):
                pass
    return sorted(out)
