"""One point of a load study in a process of its own: ``python -m
netq.app.sweep.task`` reads a pickled ``(point, repetition)`` on stdin,
runs it (:func:`netq.app.sweep.runner.run_point`, in this process's main
thread, where a run's signal handlers work) and writes its row as one JSON
line on stdout.  :mod:`netq.app.sweep.dist` starts it on a Dask worker."""

from __future__ import annotations

import json
import pickle
import sys

from netq.machine.result import EXIT_INTERRUPTED, EXIT_TERMINATED
from shm.ipc import Terminated

from .runner import run_point


def main() -> int:
    point, rep = pickle.loads(sys.stdin.buffer.read())
    try:
        row = run_point(point, rep)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Terminated:
        return EXIT_TERMINATED
    sys.stdout.write(json.dumps(row, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
