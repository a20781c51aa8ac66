"""Alerts to a team's webhook: a missed deadline of the nightly chain, a failed task.

One JSON object per alert, POSTed to the URL of ``FTI_ALERT_WEBHOOK_URL`` (a Slack or Teams
incoming webhook, a chat bot, an incident tool...). No URL set: no alert, said once in the log.
An unreachable or refusing receiver is logged in one line and never raised: a failed alert must
not fail the task or the callback that sends it.

Airflow calls this through its notifier interface (``fti_common.WebhookNotifier`` in the DAG
folder: the Airflow side lives there, fti itself never imports Airflow).
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

log = logging.getLogger("fti")

WEBHOOK_URL_ENV = "FTI_ALERT_WEBHOOK_URL"
# Long enough for a busy receiver, short enough not to hold a worker slot for long.
TIMEOUT_SECONDS = 10.0
MAX_REASON = 500  # characters of a reason: one line, not a traceback


def webhook_url() -> str | None:
    """The alert webhook's URL (``Settings.alert_webhook_url``), read when an alert is sent
    (never at DAG parse time); None, logged, when the settings cannot be read."""
    from fti.errors import ConfigError
    from fti.settings import get_settings

    try:
        return get_settings().alert_webhook_url
    except ConfigError as exc:
        log.warning("fti: alert not sent: the settings are unreadable: %s", one_line(exc))
        return None


def one_line(text: object) -> str:
    """The first non-empty line of ``text``, cut to MAX_REASON characters."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    line = lines[0] if lines else ""
    return line if len(line) <= MAX_REASON else line[: MAX_REASON - 1] + "…"


def iso_utc(value: object) -> str | None:
    """A time (a datetime, or its text as Airflow's API or str() writes it) as ISO 8601 UTC."""
    if value is None or value == "":
        return None
    try:
        when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat()


def run_link(base_url: str | None, dag_id: str, run_id: str) -> str:
    """The Airflow UI page of a DAG run (``[api] base_url``; Airflow's default when unset)."""
    base = (base_url or "http://localhost:8080").rstrip("/")
    return f"{base}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"


def alert(
    *,
    event: str,
    project: str,
    dag_id: str,
    run_id: str,
    logical_date: object,
    what: str,
    reason: str,
    link: str,
    **extra: Any,
) -> dict[str, Any]:
    """The JSON body of an alert: ``event`` is ``deadline_missed`` or ``task_failed``;
    ``what`` names what overran or failed, ``reason`` says why in one line."""
    return {
        "event": event,
        "project": project,
        "dag_id": dag_id,
        "run_id": run_id,
        "logical_date": iso_utc(logical_date),
        "what": what,
        "reason": one_line(reason),
        "link": link,
        **extra,
    }


def send(payload: dict[str, Any], url: str | None = None) -> bool:
    """POST ``payload`` as JSON to ``url`` (default: the setting); True when the receiver
    answered 2xx. Never raises for a network or HTTP error: it is logged, in one line."""
    url = url or webhook_url()
    if not url:
        log.info(
            "fti: alert not sent (%s unset): %s: %s",
            WEBHOOK_URL_ENV,
            payload.get("what"),
            payload.get("reason"),
        )
        return False
    request = urllib.request.Request(
        url,
        data=json.dumps(payload, default=str).encode(),
        headers={"Content-Type": "application/json", "User-Agent": "fti-alerts"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (OSError, ValueError) as exc:  # refused, unreachable, timed out, bad URL
        log.warning(
            "fti: could not send the %s alert for %s to %s: %s. Check %s and that the "
            "receiver is up; the alert is lost, the run is not affected.",
            payload.get("event"),
            payload.get("what"),
            _host(url),
            getattr(exc, "reason", None) or exc,
            WEBHOOK_URL_ENV,
        )
        return False
    if not 200 <= status < 300:
        log.warning(
            "fti: the alert receiver %s answered HTTP %s to the %s alert for %s; the alert is "
            "lost, the run is not affected.",
            _host(url),
            status,
            payload.get("event"),
            payload.get("what"),
        )
        return False
    log.info("fti: %s alert sent for %s", payload.get("event"), payload.get("what"))
    return True


def _host(url: str) -> str:
    """The receiver's scheme and host, for the log: a webhook URL's path often holds its secret."""
    parts = urlsplit(url)
    if not parts.hostname:
        return "the configured URL"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # not a number: say nothing of it
        port = ""
    return f"{parts.scheme}://{parts.hostname}{port}"  # no user:password, path or query
