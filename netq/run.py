"""``python -m netq.run``: the command's name; the program is :mod:`netq.app.run`."""

import sys

from netq.app.run import main

if __name__ == "__main__":
    sys.exit(main())
