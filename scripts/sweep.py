#!/usr/bin/env python3
"""Load studies of netq: ``python scripts/sweep.py STUDY [--quick] [--resume] ...``.

The studies live in :mod:`netq.app.sweep` (its docstring documents them, the
output files and the exit codes); this is their entry point.
"""

import os
import sys

# a checkout runs its own netq, not an installed copy
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from netq.app.sweep import main

if __name__ == "__main__":
    sys.exit(main())
