"""blockroute keeps its dependencies from reporting usage to their vendors.

Three of the libraries the project runs on report usage home by default, from every
process that loads them:

- onnxruntime (1.29 and later, outside Windows): a `ProcessInfo` event per process (the
  Python executable's path, the OS, a persistent device id) queued in
  ``~/.cache/Microsoft/DeveloperTools/.onnxruntime`` for upload to Microsoft; the `ml`
  strategy and `serve` load it for the slicer's policy.
- MLflow (3.x): usage events for its registry calls (`models ...`, `train --register`).
- Ray: cluster usage statistics, hourly, from a cluster's head (`--executor ray`).

A trading desk's hosts should not open connections that nobody asked for, nor leave an
identifier on disk for them, so importing `router` (the first thing every command, the
service and every worker does) opts the process out, and the processes it starts with it.
A variable already set is left as it is: whoever wants to report sets it themselves. The
image sets the same variables (Dockerfile), for the processes Ray's own launcher starts.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

#: each library's own opt-out, as it documents it: the variable and its "off" value
OPT_OUT: dict[str, str] = {
    "ORT_DISABLE_TELEMETRY": "1",  # read when onnxruntime starts: before its first session
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "RAY_USAGE_STATS_ENABLED": "0",  # Ray accepts only "0" or "1"
}


def opt_out(environ: MutableMapping[str, str] | None = None) -> None:
    """Set every `OPT_OUT` variable that `environ` (the process's environment) lacks."""
    env = os.environ if environ is None else environ
    for name, off in OPT_OUT.items():
        env.setdefault(name, off)
