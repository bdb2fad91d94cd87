"""Typed settings built from parsed TOML, with every problem collected at once.

A technician editing a config on a node over a slow link should see all of
its mistakes in one run, each with its key path, the bad value and what is
allowed. So nothing here raises on the first error: problems are appended to
a list and the caller decides when to stop.

Every number must be finite and at most `NUMBER_LIMIT` in size, whatever its
key (TOML has `nan` and `inf`): a NaN passes every `min`/`max` comparison, so
`interval = nan` would run a probe in a tight loop and `monthly_budget_mb = nan`
would lift the data limit; a huge value overflows the integer and time
arithmetic it feeds (bytes from megabytes, sleeps).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from typing import Any, Callable, Optional, Union, get_args, get_origin, get_type_hints

Check = Callable[[Any], Optional[str]]
NUMBER_LIMIT = 1e12  # any setting; keys set tighter bounds of their own
# What a parsed TOML value can be: the loader's input, before it is checked and typed.
TomlValue = Union[str, int, float, bool, list[Any], dict[str, Any]]


@dataclasses.dataclass(frozen=True)
class Problem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigError(Exception):
    """All the problems found in one config source."""

    def __init__(self, problems: list[Problem], source: str = "") -> None:
        self.problems = problems
        self.source = source
        super().__init__(self.summary())

    def summary(self) -> str:
        where = f"{self.source}: " if self.source else ""
        return "\n".join(f"{where}{p}" for p in self.problems)


def internal(default: Any = None) -> Any:
    """A field the loader never reads from TOML: it is filled in by code."""
    return dataclasses.field(default=default, metadata={"internal": True}, compare=False)


def setting(
    default: Any = dataclasses.MISSING,
    *,
    factory: Optional[Callable[[], Any]] = None,
    help: str = "",
    min: Optional[float] = None,
    max: Optional[float] = None,
    above: Optional[float] = None,
    choices: Optional[tuple[Any, ...]] = None,
    check: Optional[Check] = None,
) -> Any:
    """A dataclass field with the constraints the loader enforces."""
    meta = {"help": help, "min": min, "max": max, "above": above, "choices": choices, "check": check}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def describe(value: Any) -> str:
    kind = {bool: "boolean", int: "integer", float: "number", str: "string"}.get(type(value))
    if kind is None:
        kind = "table" if isinstance(value, dict) else "array" if isinstance(value, list) else type(value).__name__
    shown = repr(value) if kind != "table" else "{...}"
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"{shown} ({kind})"


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def unknown_key(path: str, key: str, allowed: list[str]) -> Problem:
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if close:
        hint = f"did you mean '{close[0]}'?"
    else:
        hint = "allowed: " + ", ".join(sorted(allowed)) if allowed else "no keys are allowed here"
    return Problem(join(path, key), f"unknown key; {hint}")


def field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def build(
    cls: type,
    data: Any,
    path: str,
    problems: list[Problem],
    *,
    ignore: tuple[str, ...] = (),
    extra_allowed: tuple[str, ...] = (),
) -> Any:
    """Build dataclass `cls` from a TOML table; returns None when a problem makes it impossible.

    Keys in `ignore` are skipped (another builder handles them); keys in
    `extra_allowed` are only used for "did you mean" suggestions.
    """
    if not isinstance(data, dict):
        problems.append(Problem(path, f"expected a table, got {describe(data)}"))
        return None
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init and not f.metadata.get("internal")}
    for key in data:
        if key not in fields and key not in ignore:
            problems.append(unknown_key(path, key, sorted(set(fields) | set(extra_allowed))))
    values: dict[str, Any] = {}
    before = len(problems)
    for name, f in fields.items():
        if name in ignore:
            continue
        key_path = join(path, name)
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                problems.append(Problem(key_path, "missing; this key is required"))
            continue
        value = convert(hints[name], data[name], key_path, problems)
        if value is not None:
            problem = constrain(f.metadata, value)
            if problem:
                problems.append(Problem(key_path, f"{problem} (got {describe(data[name])})"))
            values[name] = value
    if len(problems) > before:
        return None
    return cls(**values)


def convert(tp: Any, value: Any, path: str, problems: list[Problem]) -> Any:
    origin = get_origin(tp)
    if origin is Union:
        inner = [a for a in get_args(tp) if a is not type(None)]
        return convert(inner[0], value, path, problems)
    if dataclasses.is_dataclass(tp):
        return build(tp, value, path, problems)  # type: ignore[arg-type]
    if origin in (list, tuple):
        if not isinstance(value, list):
            problems.append(Problem(path, f"expected an array, got {describe(value)}"))
            return None
        item_type = get_args(tp)[0]
        items = [convert(item_type, v, f"{path}[{i}]", problems) for i, v in enumerate(value)]
        if any(i is None for i in items):
            return None
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            problems.append(Problem(path, f"expected a table, got {describe(value)}"))
            return None
        item_type = get_args(tp)[1]
        out = {k: convert(item_type, v, join(path, k), problems) for k, v in value.items()}
        return None if any(v is None for v in out.values()) else out
    return scalar(tp, value, path, problems)


def number_problem(value: float) -> Optional[str]:
    """Why a TOML number cannot be a setting, or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
    if abs(value) > NUMBER_LIMIT:
        return f"must be at most {NUMBER_LIMIT:g} in size"
    return None


def scalar(tp: Any, value: Any, path: str, problems: list[Problem]) -> Any:
    if tp is bool and isinstance(value, bool):
        return value
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if number and (tp is float or (tp is int and isinstance(value, int))):
        problem = number_problem(value)
        if problem:
            problems.append(Problem(path, f"{problem} (got {describe(value)})"))
            return None
        return float(value) if tp is float else value
    if tp is str and isinstance(value, str):
        return value
    if tp is Any:
        return value
    wanted = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(tp, str(tp))
    problems.append(Problem(path, f"expected {wanted}, got {describe(value)}"))
    return None


def constrain(meta: Any, value: Any) -> Optional[str]:
    low, high, above = meta.get("min"), meta.get("max"), meta.get("above")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if above is not None and value <= above:
            return f"must be greater than {above:g}"
        if low is not None and value < low:
            return f"must be at least {low:g}"
        if high is not None and value > high:
            return f"must be at most {high:g}"
    choices = meta.get("choices")
    if choices is not None:
        items = value if isinstance(value, list) else [value]
        bad = [v for v in items if v not in choices]
        if bad:
            return f"must be one of {', '.join(map(str, choices))}"
    check = meta.get("check")
    if check is not None:
        return check(value)
    return None
