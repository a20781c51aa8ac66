"""The host name a Celery worker of the live test records on its task instances.

In docker compose each worker is its own container, with its own host name. The live test runs
both workers on one machine, so each gets a name of its own (``LIVE_WORKER_HOSTNAME``) through
Airflow's ``[core] hostname_callable``, and the test can tell which worker ran which task.
"""

from __future__ import annotations

import os
import socket


def worker_hostname() -> str:
    return os.environ.get("LIVE_WORKER_HOSTNAME") or socket.getfqdn()
