#!/usr/bin/env python3
"""Redraw a load study's PNG from its JSON (python scripts/plot.py DIR/STUDY.json).

The plots live in :mod:`netq.app.sweep.plot`; this is their entry point.
"""

import os
import sys

# a checkout runs its own netq, not an installed copy
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from netq.app.sweep.plot import main

if __name__ == "__main__":
    sys.exit(main())
