"""Reading one TOML table of a profile: typed access whose errors name file, key and value.

:class:`Table` wraps a parsed TOML table and the place it came from (``"teams.toml: "``,
``"teams.toml: requirements[1]."``); every access checks the value's type, records the key
as used, and :meth:`Table.check_unused` then rejects any key nobody asked for (a typo such
as ``treshold`` must not be silently ignored).
"""

from __future__ import annotations

from typing import Any


class ProfileError(ValueError):
    """A profile that cannot be used; the message names file, key and value."""


class Table:
    """One TOML table being read: every access checks type and records the key as used."""

    def __init__(self, data: dict[str, Any], where: str) -> None:
        self.data = data
        self.where = where
        self.used: set[str] = set()

    def fail(self, key: str, message: str) -> ProfileError:
        return ProfileError(f"{self.where}{key}: {message}")

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        self.used.add(key)
        if key not in self.data:
            if default is ...:
                raise self.fail(key, "is required")
            return default
        value = self.data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            raise self.fail(key, f"{value!r} is not {kind_name(kind)}")
        return value

    def number(self, key: str, default: Any = ...) -> Any:
        """An int or float (never a bool); ``default`` when absent."""
        value = self.get(key, (int, float), default)
        return None if value is None else float(value)

    def choice(self, key: str, options: tuple[str, ...], default: Any = ...) -> str:
        value = self.get(key, str, default)
        if value not in options:
            raise self.fail(key, f"{value!r} is not one of {', '.join(options)}")
        return str(value)

    def text(self, key: str, default: Any = ...) -> str:
        value = self.get(key, str, default)
        if default is ... and not value.strip():
            raise self.fail(key, "must not be empty")
        return str(value)

    def strings(self, key: str) -> tuple[str, ...]:
        values = self.get(key, list, [])
        for i, item in enumerate(values):
            if not isinstance(item, str) or not item.strip():
                raise self.fail(f"{key}[{i}]", f"{item!r} is not a non-empty string")
        return tuple(v.strip().lower() for v in values)

    def sub(self, key: str) -> Table:
        """The table under ``key`` (required), to read with its own place."""
        return Table(self.get(key, dict), f"{self.where}{key}.")

    def check_unused(self) -> None:
        extra = sorted(set(self.data) - self.used)
        if extra:
            raise self.fail(extra[0], f"unknown key (value {self.data[extra[0]]!r})")


def kind_name(kind: type | tuple[type, ...]) -> str:
    """``a number``, ``an integer``, ``a string or a list``… for error messages."""
    kinds = set(kind if isinstance(kind, tuple) else (kind,))
    if float in kinds:
        kinds.discard(int)  # an integer is a number
    names = {str: "string", int: "integer", float: "number", list: "list", dict: "table",
             bool: "boolean"}
    text = " or ".join(sorted(names.get(k, k.__name__) for k in kinds))
    return ("an " if text[0] in "aeiou" else "a ") + text
