"""`python -m kanjo.sim atm …`: the device simulators' command line."""

import sys

from kanjo.sim.main import main

sys.exit(main())
