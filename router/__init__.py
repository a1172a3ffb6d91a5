"""blockroute's router: the execution core, the service and the command line.

Importing it opts the process, and the processes it starts, out of its dependencies'
usage reporting to their vendors (router.vendor_telemetry): every command, the service
and every worker import it before any of those libraries.
"""

from router.vendor_telemetry import opt_out as _opt_out

_opt_out()
