"""``python -m router.reporting DOC.json DIR``: rebuild a report from a saved document."""

import sys

from router.reporting.rebuild import main

sys.exit(main())
