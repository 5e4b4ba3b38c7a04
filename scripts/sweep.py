#!/usr/bin/env python3
"""Load studies of netq: ``python scripts/sweep.py STUDY [--quick] [--resume] ...``.

The studies live in :mod:`netq.app.sweep` (its docstring documents them, the
output files and the exit codes); this is their entry point.
"""

import sys

from netq.app.sweep import main

if __name__ == "__main__":
    sys.exit(main())
