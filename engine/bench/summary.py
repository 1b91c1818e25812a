"""Rows of a benchmark averaged over its repeats: one helper for the in-set grid and the transfer protocol."""

from __future__ import annotations

import statistics
from typing import Any, Callable, Hashable, Sequence, TypeVar

Row = TypeVar("Row")


def mean_and_std_by_group(
    rows: Sequence[Row],
    group: Callable[[Row], Hashable],
    describe: Callable[[list[Row]], dict[str, Any]],
    numbers: Callable[[Row], dict[str, Any]],
    counts: Callable[[Any], bool] = lambda value: True,
) -> list[dict]:
    """One entry per group (in first-seen order): ``describe(group rows)``, then for every number of the
    group's first row its mean and sample std over the rows (``<key>_std``, 0 for one value).

    ``counts(value)`` says whether a value enters the mean (e.g. not a missing measurement); a number
    with no counted value is left out of the entry.
    """
    groups: dict[Hashable, list[Row]] = {}
    for r in rows:
        groups.setdefault(group(r), []).append(r)
    out = []
    for members in groups.values():
        entry = describe(members)
        values = [numbers(r) for r in members]
        for key in values[0]:
            vals = [v.get(key) for v in values if counts(v.get(key))]
            if not vals:
                continue
            entry[key] = statistics.mean(vals)
            entry[f"{key}_std"] = statistics.stdev(vals) if len(vals) > 1 else 0.0
        out.append(entry)
    return out
