import sys

from netq.run import main

sys.exit(main())
