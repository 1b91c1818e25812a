"""Model names and report ids: never a path, never surprising.

A name is 1-64 characters of letters, digits, '.', '_', '-' and '+', not starting with '.' or '-'.
Anything else (slashes, '..', NUL, spaces, non-ASCII) is refused with a message rather than
silently rewritten, so two different user inputs can never map to the same stored entry.
"""

from __future__ import annotations

import re

from engine.errors import ConfigError

NAME_RE = re.compile(r"^[A-Za-z0-9_+][A-Za-z0-9._+-]{0,63}$")


def validate_name(name: object, source: str = "name") -> str:
    """Return ``name`` if valid, else raise ConfigError naming the problem."""
    if not isinstance(name, str):
        raise ConfigError(f"{source}: name must be text, got {type(name).__name__}")
    if not NAME_RE.match(name) or ".." in name:
        shown = name.encode("unicode_escape", "backslashreplace").decode("ascii")[:80]
        raise ConfigError(
            f"{source}: invalid name {shown!r} (use 1-64 of A-Z a-z 0-9 . _ - +, not starting with '.' or '-', no '..')"
        )
    return name


def slugify(text: str) -> str:
    """Suggest a valid name from free text (used for defaults, never to rewrite a user's name)."""
    slug = re.sub(r"[^A-Za-z0-9._+-]+", "-", text).strip(".-")[:64]
    slug = re.sub(r"\.\.+", ".", slug)
    return slug or "model"
