"""`python -m router.cli ...`, the same as the `blockroute` script."""

import sys

from router.cli import main

sys.exit(main())
