"""``python -m netq``: the same command as ``python -m netq.run``."""

import sys

from netq.app.run import main

sys.exit(main())
