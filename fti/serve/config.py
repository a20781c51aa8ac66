"""The scoring service's settings (``FTI_SERVE_*``), read once when the service starts.

They are read here from the environment until they join fti.settings.Settings; ``serve_config``
is the one place that reads them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from fti.errors import ConfigError

STALE_POLICIES = ("serve", "refuse")


@dataclass(frozen=True)
class ServeConfig:
    """``token``: the bearer token clients send (None: no authentication, only with
    ``--insecure-no-token``). ``stale``: ``serve`` answers stale features with ``stale: true``,
    ``refuse`` answers such an entity with ``status: stale`` and no score. ``max_entities``:
    the most entities one request may name. ``poll_seconds``: how often the served aliases are
    looked up. ``log``: append served predictions to the ``served_predictions`` table."""

    token: str | None = None
    stale: Literal["serve", "refuse"] = "serve"
    max_entities: int = 1000
    poll_seconds: float = 1.0
    log: bool = False


def serve_config(environ: Mapping[str, str] | None = None) -> ServeConfig:
    """The service's settings from ``environ`` (the process environment by default).

    Raises:
        ConfigError: one line per bad setting, naming it and what it must be.
    """
    env = os.environ if environ is None else environ
    problems = []
    token = env.get("FTI_SERVE_TOKEN") or None
    if token is not None and len(token) < 16:
        problems.append("FTI_SERVE_TOKEN is shorter than 16 characters; use a long random secret")
    stale = env.get("FTI_SERVE_STALE", "serve").strip().lower()
    if stale not in STALE_POLICIES:
        problems.append(f"FTI_SERVE_STALE={stale!r}: set it to serve or refuse")
    max_entities = _number(env, "FTI_SERVE_MAX_ENTITIES", "1000", int, 1, problems)
    poll_seconds = _number(env, "FTI_SERVE_POLL_SECONDS", "1", float, 0.05, problems)
    log = env.get("FTI_SERVE_LOG", "false").strip().lower()
    if log not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        problems.append(f"FTI_SERVE_LOG={log!r}: set it to true or false")
    if problems:
        raise ConfigError("\n".join(problems))
    return ServeConfig(
        token=token,
        stale="refuse" if stale == "refuse" else "serve",
        max_entities=int(max_entities),
        poll_seconds=float(poll_seconds),
        log=log in ("1", "true", "yes", "on"),
    )


def _number(
    env: Mapping[str, str],
    name: str,
    default: str,
    kind: type[int] | type[float],
    least: float,
    problems: list[str],
) -> float:
    text = env.get(name, default).strip()
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or value < least:
        problems.append(f"{name}={text!r}: set it to a number of at least {least:g}")
        return least
    return value
