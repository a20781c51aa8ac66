"""Quarantine records, built column-wise: the problems found in a file's rows and, per bad row,
one record of its columns, its rules (``column: rule``, with the raw value it got) and its raw
values as JSON, with the text ``json.dumps`` and ``repr`` would write, so that a file of bad
rows costs about what a good one does."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow
import pyarrow.compute as pc

from fti.validation._values import _arrow

QUARANTINE_COLUMNS = ["row_number", "column", "rule", "raw_values"]
GOT_CHARS = 100  # of a raw value quoted in a rule ("(got '...')"); longer ones end in "…"
# Texts that json.dumps / repr write as they are between quotes (printable ASCII, no escapes).
JSON_PLAIN = r"^[\x20\x21\x23-\x5b\x5d-\x7e]*$"
REPR_PLAIN = r"^[\x20-\x26\x28-\x5b\x5d-\x7e]*$"


@dataclass(frozen=True)
class _Problem:
    """Rows (by position) that broke one rule, or one batch of pandera's failure cases.

    ``column`` and ``rule`` are one value or one per row; where ``got``, the record's text ends
    with the row's raw value of ``column`` (and ``reason``, one per row, None for none).
    """

    positions: np.ndarray
    column: str | np.ndarray
    rule: str | np.ndarray
    got: bool | np.ndarray = False
    reason: np.ndarray | None = None

    def rows(self, keep: np.ndarray | None) -> _Problem:
        """Only the rows whose positions are in ``keep`` (all when None)."""
        if keep is None:
            return self
        at = np.isin(self.positions, keep)

        def pick(value: Any) -> Any:
            return value[at] if isinstance(value, np.ndarray) else value

        return _Problem(
            self.positions[at],
            pick(self.column),
            pick(self.rule),
            pick(self.got),
            pick(self.reason),
        )


@dataclass
class _Flags:
    """The problems found so far: which rows (by position) are bad, and what each broke (its
    text is built only for the records kept)."""

    size: int
    bad: np.ndarray = field(init=False)
    problems: list[_Problem] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.bad = np.zeros(self.size, dtype=bool)

    def add(self, where: np.ndarray, *args: Any, **kwargs: Any) -> None:
        """Flag the rows ``where`` (a mask, or positions), with the rest as ``_Problem``'s."""
        positions = np.flatnonzero(where) if where.dtype == bool else where
        if len(positions):
            self.bad[positions] = True
            self.problems.append(_Problem(positions, *args, **kwargs))

    @property
    def count(self) -> int:
        return int(self.bad.sum())


def _records(
    raw: pd.DataFrame,
    flags: _Flags,
    malformed: Sequence[tuple[int, str, str]],
    limit: int | None = None,
) -> pd.DataFrame:
    """One record per bad row, by row number: its columns, its rules (``column: rule``, each
    once, in the order found) and its raw values as JSON (what ``json.dumps`` writes). With
    ``limit``, only the first ``limit`` bad rows by row number."""
    positions = np.flatnonzero(flags.bad)
    numbers = np.asarray(raw.index, dtype=np.int64)[positions]
    unsplit = sorted(malformed)
    keep = None
    if limit is not None:
        cut = np.sort(np.concatenate([numbers, [line for line, _, _ in unsplit]]))[:limit]
        last = cut[-1] if len(cut) else -1
        positions, numbers = positions[numbers <= last], numbers[numbers <= last]
        unsplit = [m for m in unsplit if m[0] <= last]
        keep = positions
    columns, rules = _rules(raw, [p.rows(keep) for p in flags.problems], positions)
    records = pyarrow.table(
        {
            "row_number": pyarrow.array(numbers, pyarrow.int64()),
            "column": columns,
            "rule": rules,
            "raw_values": _json_objects(raw, positions),
        }
    )
    if unsplit:
        lines = pyarrow.table(
            {
                "row_number": pyarrow.array([line for line, _, _ in unsplit], pyarrow.int64()),
                "column": pyarrow.array(["(row)"] * len(unsplit), pyarrow.string()),
                "rule": pyarrow.array([f"(row): {problem}" for _, problem, _ in unsplit]),
                "raw_values": pyarrow.array([json.dumps({"line": t}) for _, _, t in unsplit]),
            }
        )
        records = pyarrow.concat_tables([records, lines])
    return records.sort_by("row_number").to_pandas()[QUARANTINE_COLUMNS]


def _rules(
    raw: pd.DataFrame, problems: list[_Problem], positions: np.ndarray
) -> tuple[pyarrow.Array, pyarrow.Array]:
    """Per row of ``positions`` (sorted): its columns joined by ``,`` and its ``column: rule``
    texts joined by ``; ``, each once, in the order found."""
    if not problems:
        return pyarrow.array([], pyarrow.string()), pyarrow.array([], pyarrow.string())
    at = np.concatenate([p.positions for p in problems])
    column = pyarrow.concat_arrays([_strings(p.column, len(p.positions)) for p in problems])
    text = pyarrow.concat_arrays([_rule_text(raw, p) for p in problems])
    if len(at) > 1 and not (np.diff(at) > 0).all():  # by row, in the order found within one
        order = np.argsort(at, kind="stable")
        at, column, text = at[order], column.take(order), text.take(order)
    if len(at) == len(positions):  # one problem per row, the usual case: nothing to join
        return column, text
    joined = pd.DataFrame({"at": at, "column": column.to_pandas(), "text": text.to_pandas()})
    return (
        pyarrow.array(_joined(joined, "column", ",").reindex(positions), pyarrow.string()),
        pyarrow.array(_joined(joined, "text", "; ").reindex(positions), pyarrow.string()),
    )


def _strings(value: str | np.ndarray, size: int) -> pyarrow.Array:
    """One text repeated ``size`` times, or the array's texts, as an Arrow string array."""
    if isinstance(value, np.ndarray):
        return pyarrow.array(value, pyarrow.string())
    return pyarrow.repeat(pyarrow.scalar(value, pyarrow.string()), size)


def _rule_text(raw: pd.DataFrame, problem: _Problem) -> pyarrow.Array:
    """``column: rule``, then `` (got <raw value>[: reason])`` where the problem says so."""
    size = len(problem.positions)

    def text(value: str | np.ndarray) -> str | pyarrow.Array:  # a scalar stays one
        return value if isinstance(value, str) else _strings(value, size)

    pieces = [text(problem.column), ": ", text(problem.rule)]
    got = np.broadcast_to(np.asarray(problem.got, dtype=bool), (size,))
    if got.any():
        reasons = np.full(size, None) if problem.reason is None else problem.reason
        suffix = pc.binary_join_element_wise(": ", pyarrow.array(reasons, pyarrow.string()), "")
        values = _got_values(raw, problem, got)
        pieces.append(
            pc.binary_join_element_wise(" (got ", values, suffix.fill_null(""), ")", "").fill_null(
                ""
            )
        )
    if not any(isinstance(p, pyarrow.Array) for p in pieces):
        pieces[0] = _strings(problem.column, size)
    return pc.binary_join_element_wise(*pieces, "")


def _got_values(raw: pd.DataFrame, problem: _Problem, got: np.ndarray) -> pyarrow.Array:
    """The raw values (as ``repr`` writes them) of the rows ``got``, each of its own column;
    null elsewhere."""
    names = np.broadcast_to(np.asarray(problem.column, dtype=object), got.shape)
    values = None
    for name in pd.unique(names[got]):
        rows = got & (names == name)
        quoted = _shortened(_quoted(raw[name].iloc[problem.positions[rows]], REPR_PLAIN, "'", repr))
        if rows.all():  # the usual problem: one column's values
            return quoted
        if values is None:
            values = pyarrow.nulls(len(got), pyarrow.string())
        values = pc.replace_with_mask(values, pyarrow.array(rows), quoted)
    assert values is not None
    return values


def _shortened(texts: pyarrow.Array) -> pyarrow.Array:
    """Texts cut to ``GOT_CHARS`` characters with an ellipsis: a rule quotes the start of a very
    long raw value (the record's raw values keep all of it)."""
    long = pc.greater(pc.utf8_length(texts), GOT_CHARS)
    cut = pc.binary_join_element_wise(pc.utf8_slice_codeunits(texts, 0, GOT_CHARS), "…", "")
    return pc.if_else(long, cut, texts)


def _joined(problems: pd.DataFrame, name: str, separator: str) -> pd.Series:
    """Per row (``at``), the distinct values of ``name`` in order, joined by ``separator``."""
    distinct = problems.drop_duplicates(["at", name])
    rank = distinct.groupby("at", sort=False).cumcount().to_numpy()
    values = distinct[name].to_numpy(dtype=object)
    positions = distinct["at"].to_numpy()
    joined = pd.Series(values[rank == 0], index=positions[rank == 0], dtype=object)
    for later in range(1, int(rank.max(initial=0)) + 1):
        at = rank == later
        where = positions[at]
        joined.loc[where] = joined.loc[where].to_numpy() + separator + values[at]
    return joined


def _json_objects(raw: pd.DataFrame, positions: np.ndarray) -> pyarrow.Array:
    """The rows at ``positions`` as ``json.dumps({column: text or None, ...})`` writes them,
    built column by column."""
    pieces: list[Any] = []
    for number, name in enumerate(raw.columns):
        pieces.append(("{" if number == 0 else ", ") + json.dumps(str(name)) + ": ")
        pieces.append(_quoted(raw[name].iloc[positions], JSON_PLAIN, '"', json.dumps, "null"))
    if not pieces:
        return pyarrow.array(["{}"] * len(positions), pyarrow.string())
    return pc.binary_join_element_wise(*pieces, "}", "")


def _quoted(
    values: pd.Series,
    plain: str,
    quote: str,
    encode: Callable[[Any], str],
    null: str = "None",
) -> pyarrow.Array:
    """``encode`` of each value (``null`` for a null one), vectorised: a text matching
    ``plain`` just gets ``quote`` around it (what ``encode`` gives it); others go one by one."""
    try:
        text = _arrow(values, strict=True)
    except (pyarrow.ArrowTypeError, pyarrow.ArrowInvalid):  # not text: each value its own way
        objects = values.to_numpy(dtype=object)
        present = ~np.asarray(values.isna())
        encoded = [encode(v) if p else null for v, p in zip(objects, present, strict=True)]
        return pyarrow.array(encoded, pyarrow.string())
    simple = pc.match_substring_regex(text, plain).fill_null(True)
    quoted = pc.binary_join_element_wise(quote, text, quote, "")
    if not pc.all(simple).as_py():
        rest = pc.invert(simple)
        encoded = [encode(v) for v in pc.filter(text, rest).to_pylist()]
        quoted = pc.replace_with_mask(quoted, rest, pyarrow.array(encoded, pyarrow.string()))
    return quoted.fill_null(null)
