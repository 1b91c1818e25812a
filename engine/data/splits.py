"""Deterministic, group-aware train/test splits.

Files that share content must not land on both sides: tiles of one photo
(``<scene>_<row>_<col>.png``) and images of one prompt (``<prompt>_<tag>-<k>.png``) form a group.
Groups are shuffled with the seed and assigned whole to the train half until it holds about half
of the files.
"""

from __future__ import annotations

import random
import re
from collections import OrderedDict
from pathlib import Path
from typing import Sequence, TypeVar

import numpy as np

T = TypeVar("T")
_TILE = re.compile(r"^(?P<group>.+)_\d+_\d+$")
_PROMPT = re.compile(r"^(?P<group>.+)_[A-Za-z]+-\d+$")


def group_of(path: str | Path) -> str:
    """The content group of a file name (its stem when no pattern applies)."""
    stem = Path(path).stem
    for pattern in (_TILE, _PROMPT):
        match = pattern.match(stem)
        if match:
            return match.group("group")
    return stem


def split_half(items: Sequence[T], seed: int, key=lambda x: x) -> tuple[list[T], list[T]]:
    """Split into (train, test) halves by group; deterministic for a seed and input order."""
    return split_groups(items, seed, 0.5, key)


def split_groups(items: Sequence[T], seed: int, fraction: float = 0.5, key=lambda x: x) -> tuple[list[T], list[T]]:
    """Split into (first, second) by whole groups, ``first`` holding about ``fraction`` of the items."""
    groups: "OrderedDict[str, list[T]]" = OrderedDict()
    for item in items:
        groups.setdefault(group_of(key(item)), []).append(item)
    names = sorted(groups)
    random.Random(seed).shuffle(names)
    target = len(items) * fraction
    first: list[T] = []
    second: list[T] = []
    for name in names:
        members = groups[name]
        # put the group where it brings that side closer to its share
        if len(first) + len(members) / 2 <= target:
            first.extend(members)
        else:
            second.extend(members)
    if not first or not second:
        raise ValueError("cannot split: fewer than two content groups")
    return first, second


def take(items: Sequence[T], n: int | None, seed: int) -> list[T]:
    """A seeded subset of ``n`` items (all of them when n is None or too large)."""
    items = list(items)
    if n is None or n >= len(items):
        return items
    rng = random.Random(seed + 1)
    picked = sorted(rng.sample(range(len(items)), n))
    return [items[i] for i in picked]


def share_out(items: Sequence[T], seed: int, share: float, minimum: int, key=lambda x: x) -> tuple[list[T], list[T]]:
    """(held out, kept): about ``share`` of the items by whole content groups (``split_groups``).

    With a single content group, a seeded ``share`` of single items instead (at least ``minimum``).
    Used for the calibration images a fit holds back and for the uploads the dashboard checks on.
    """
    try:
        return split_groups(list(items), seed, share, key=key)
    except ValueError:  # one content group only
        order = np.random.default_rng(seed).permutation(len(items))
        n = max(minimum, round(share * len(items)))
        return [items[i] for i in sorted(order[:n])], [items[i] for i in sorted(order[n:])]
