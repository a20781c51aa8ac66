"""Signalling a child process together with everything it started.

A child started with ``start_new_session=True`` leads a process group, and ``os.killpg`` of
that group is how a test stops it. Airflow's components move some of their own children into
groups of their own (the task supervisor's ``setpgid`` for each task process; the scheduler's
executor workers), which a ``killpg`` of the leader's group never reaches: they outlived the
test as orphans. So the tree is walked (psutil) before the signal, and every process in it is
signalled as well as the group.
"""

from __future__ import annotations

import contextlib
import os
import signal

import psutil


def tree(pid: int) -> list[psutil.Process]:
    """The process ``pid`` and every descendant alive now (empty when it has gone)."""
    try:
        leader = psutil.Process(pid)
        return [leader, *leader.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def signal_tree(pid: int, signum: int) -> list[psutil.Process]:
    """Send ``signum`` to the group ``pid`` leads and to every process of its tree; returns
    the processes signalled (a process that has gone meanwhile is no error)."""
    members = tree(pid)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)
    for member in members:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            member.send_signal(signum)
    return members


def stop_tree(pid: int, grace: float = 30.0) -> None:
    """SIGTERM the group and tree of ``pid``; SIGKILL whatever is left after ``grace`` s."""
    members = signal_tree(pid, signal.SIGTERM)
    _, alive = psutil.wait_procs(members, timeout=grace)
    for member in alive:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            member.kill()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    psutil.wait_procs(alive, timeout=10)
