"""Listings and `fti sql` at 80 columns: a table that fits is a table; one that does not fit
prints one block per row (psql's expanded display) instead of shrinking headers to `as_…`."""

from __future__ import annotations

import pytest
from rich.console import Console

from fti.cli import output

WIDE = {
    "model_name": "churn",
    "model_version": 12,
    "entity_id": "customer-000494",
    "as_of_date": "2026-06-30",
    "probability": 0.8312,
    "run_id": "churn_inference/scheduled__2026-06-30T00:00:00+00:00",
    "feature_versions": {"customer_activity": 6, "customer_profile": 6},
}


def printed(monkeypatch: pytest.MonkeyPatch, rows: list[dict], width: int = 80) -> str:
    terminal = Console(width=width, record=True, color_system=None)
    monkeypatch.setattr(output, "console", terminal)
    output.emit(rows, as_json=False)
    return terminal.export_text()


def test_rows_too_wide_for_the_terminal_print_as_records_with_whole_names_and_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = printed(monkeypatch, [WIDE, WIDE | {"entity_id": "customer-000017"}])
    assert "…" not in text
    assert text.count("-[ RECORD") == 2
    assert "as_of_date       | 2026-06-30" in text
    assert "run_id           | churn_inference/scheduled__2026-06-30T00:00:00+00:00" in text
    assert '{"customer_activity": 6, "customer_profile": 6}' in text
    assert all(len(line) <= 80 for line in text.splitlines() if "run_id" not in line)


def test_rows_that_fit_stay_a_table(monkeypatch: pytest.MonkeyPatch) -> None:
    text = printed(monkeypatch, [{"name": "churn", "version": 3}, {"name": "spend", "version": 1}])
    assert "RECORD" not in text
    assert "┃ name  ┃ version ┃" in text


def test_the_same_rows_are_a_table_on_a_wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    text = printed(monkeypatch, [WIDE], width=250)
    assert "RECORD" not in text and "…" not in text
    assert "┃ model_name ┃" in text
