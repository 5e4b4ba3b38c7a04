"""Output paths a command will write, checked before anything runs."""

from __future__ import annotations

import os


def output_path_problem(flag: str, path: str) -> str | None:
    """Why ``path`` cannot be written (one line naming ``flag``), or None.

    Asked before anything runs, not after.  The file is opened for appending
    (an existing file keeps its bytes until the run writes it) or created
    and removed again, so root, read-only mounts and /proc answer truthfully
    (access(2) would not)."""
    if os.path.isdir(path):
        return f"{flag}: {path} is a directory"
    existed = os.path.lexists(path)
    try:
        with open(path, "a" if existed else "x"):
            pass
    except OSError as e:
        return f"{flag}: cannot write {path}: {e.strerror}"
    if not existed:
        os.unlink(path)
    return None
