"""Layered run configuration: dataclass defaults < a study's defaults < the YAML file < flags, with each value's
source remembered, every YAML value type-checked (with its file and line) before any data loads, and settings
that depend on the mode kept in per-mode blocks.

A YAML file may hold a ``modes:`` mapping (and a study's defaults a ``"modes"`` dict) whose blocks apply on top of
the file's other values for the run's mode. The mode is the flag's, else the file's, else the study's, so
``--mode finetune`` on a frozen config brings the finetune block, and a value given as a flag still wins::

    mode: frozen
    modes:
      frozen: {learning_rate: 1.0e-3}
      finetune: {learning_rate: 5.0e-5}
"""

from __future__ import annotations

import enum
import re
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, Union

import yaml

DEFAULT = "default"
MODE_KEY = "mode"
PROFILES_KEY = "modes"


class ConfigError(ValueError):
    """A configuration value of the wrong type, range or name; the message says where it came from."""


@dataclass
class ConfigSources:
    """Where each value that differs from its dataclass default came from: ``flag --x``, ``file.yaml:12`` (or
    ``file.yaml:12 (modes.frozen)``), or ``recipe defaults``."""

    sources: dict[str, str] = field(default_factory=dict)
    config_file: str | None = None
    argv: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def of(self, name: str) -> str:
        return self.sources.get(name, DEFAULT)


# ---- reading a YAML file with the line of every key -------------------------------------------------------------
def read_yaml(path: str | Path) -> tuple[dict[str, Any], dict[str, int], dict[str, dict[str, int]]]:
    """The mapping in ``path``, the 1-based line of each top-level key, and of each key inside ``modes`` blocks."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Config file '{path}' does not exist.")
    text = path.read_text(encoding="utf-8")
    try:
        node = yaml.compose(text)
        values = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(f"{where}: not valid YAML ({problem}).") from None
    values = values or {}
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a mapping of argument names to values, got {type(values).__name__}.")
    lines, mode_lines = {}, {}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            lines[key.value] = key.start_mark.line + 1
            if key.value == PROFILES_KEY and isinstance(value, yaml.MappingNode):
                for mode_key, block in value.value:
                    if isinstance(block, yaml.MappingNode):
                        mode_lines[mode_key.value] = {k.value: k.start_mark.line + 1 for k, _ in block.value}
    return values, lines, mode_lines


# ---- types ------------------------------------------------------------------------------------------------------
def _members(hint) -> tuple:
    """A union's members; ``SomeEnum | str`` (transformers' way of taking an enum's value) is the enum alone."""
    members = typing.get_args(hint)
    if str in members and any(isinstance(m, type) and issubclass(m, enum.Enum) for m in members):
        members = tuple(m for m in members if m is not str)
    return members


def _type_name(hint) -> str:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in _members(hint))
    if origin is list:
        args = typing.get_args(hint)
        return f"a list of {_type_name(args[0]) if args else 'values'}"
    if origin is Literal:
        return "one of " + ", ".join(map(str, typing.get_args(hint)))
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return "one of " + ", ".join(str(m.value) for m in hint)
    if hint is type(None):
        return "null"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string", dict: "a mapping"}.get(
        hint, getattr(hint, "__name__", str(hint)))


class _Mismatch(Exception):
    pass


def coerce(value: Any, hint) -> Any:
    """``value`` as the field type ``hint`` wants it, or ``_Mismatch``. Strict where YAML is loose: 512.0 is not an
    integer and 'yes' is not a bool; a number written 5e-5 (a string to YAML 1.1) is a float; one string is a
    one-item list."""
    if hint is Any or hint is typing.Any:
        return value
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        members = _members(hint)
        if value is None:
            if type(None) in members:
                return None
            raise _Mismatch
        # Try the most specific members first so that 3 stays an int for int | float, and "epoch" a str member.
        order = sorted(members, key=lambda m: (m is str, m is float))
        for member in order:
            if member is type(None):
                continue
            try:
                return coerce(value, member)
            except _Mismatch:
                continue
        raise _Mismatch
    if origin is list:
        (item,) = typing.get_args(hint) or (Any,)
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise _Mismatch
        return [coerce(v, item) for v in value]
    if origin is dict or hint is dict:
        if isinstance(value, dict):
            return value
        raise _Mismatch
    if origin is Literal:
        if value in typing.get_args(hint):
            return value
        raise _Mismatch
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        allowed = {m.value for m in hint}
        if isinstance(value, hint):
            return value
        if isinstance(value, str) and value in allowed:
            return value
        raise _Mismatch
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _Mismatch
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise _Mismatch from None
        raise _Mismatch
    if hint is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise _Mismatch
    if hint is type(None):
        if value is None:
            return None
        raise _Mismatch
    return value


def field_types(dataclass_types: tuple[type, ...]) -> dict[str, Any]:
    hints = {}
    for cls in dataclass_types:
        resolved = typing.get_type_hints(cls)
        for f in fields(cls):
            if f.init:
                hints.setdefault(f.name, resolved.get(f.name, Any))
    return hints


def check_values(values: dict[str, Any], hints: dict[str, Any], where: dict[str, str]) -> dict[str, Any]:
    """Each value coerced to its field's type; a mismatch is a ConfigError naming the value, its source and the
    type wanted."""
    checked = {}
    for name, value in values.items():
        try:
            checked[name] = coerce(value, hints[name])
        except _Mismatch:
            hint = hints[name]
            fix = ""
            if typing.get_origin(hint) in (Union, types.UnionType):
                plain = [a for a in typing.get_args(hint) if a is not type(None)]
                hint = plain[0] if len(plain) == 1 else hint
            if hint is int and isinstance(value, float) and value.is_integer():
                fix = f"; write {int(value)}"
            raise ConfigError(f"{name}: {value!r} ({where[name]}) is not {_type_name(hints[name])}{fix}.") from None
    return checked


# ---- the command line -------------------------------------------------------------------------------------------
def flags_given(argv: list[str], names: set[str]) -> dict[str, str]:
    """The fields set on the command line, each with the flag that set it (``--x``, ``--x=1``, ``--x-y``,
    ``--no_x``)."""
    given = {}
    for token in argv:
        if not token.startswith("--"):
            continue
        flag = token.split("=", 1)[0]
        name = flag[2:].replace("-", "_")
        if name not in names and name.startswith("no_") and name[3:] in names:
            name = name[3:]
        if name in names:
            given[name] = flag
    return given


def flag_value(argv: list[str], name: str) -> str | None:
    """The last value given to ``--name`` (``--name V`` or ``--name=V``) in ``argv``, if any."""
    value = None
    for i, token in enumerate(argv):
        if token == f"--{name}" and i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            value = argv[i + 1]
        elif token.startswith(f"--{name}="):
            value = token.split("=", 1)[1]
    return value


# ---- layering ---------------------------------------------------------------------------------------------------
def layered_defaults(dataclass_types: tuple[type, ...], argv: list[str], config_path: str | Path | None,
                     defaults: dict[str, Any] | None) -> tuple[dict[str, Any], ConfigSources]:
    """The values that replace the dataclasses' defaults (study defaults, then the YAML, each with its mode block
    for the run's mode), type-checked, and the source of every value including the flags."""
    hints = field_types(dataclass_types)
    known = set(hints)
    record = ConfigSources(config_file=None if config_path is None else str(config_path), argv=list(argv))
    layers: list[tuple[dict[str, Any], dict[str, str]]] = []

    defaults = dict(defaults or {})
    study_modes = defaults.pop(PROFILES_KEY, {}) or {}
    unknown = sorted(set(defaults).union(*study_modes.values()) - known)
    if unknown:
        raise ConfigError(f"recipe defaults name unknown arguments {unknown}.")
    file_values, file_modes, lines, mode_lines = {}, {}, {}, {}
    if config_path is not None:
        file_values, lines, mode_lines = read_yaml(config_path)
        file_modes = file_values.pop(PROFILES_KEY, None) or {}
        if not isinstance(file_modes, dict):
            raise ConfigError(f"{config_path}:{lines.get(PROFILES_KEY, '?')}: '{PROFILES_KEY}' must map each mode "
                              "to a block of values, e.g. modes: {{frozen: {{learning_rate: 1.0e-3}}}}.")
        unknown = sorted(set(file_values) - known)
        if unknown:
            where = ", ".join(f"{k} (line {lines.get(k, '?')})" for k in unknown)
            raise ConfigError(f"{config_path}: unknown keys {where}; see `--help` for the accepted arguments.")

    mode = flag_value(argv, MODE_KEY) or file_values.get(MODE_KEY) or defaults.get(MODE_KEY)
    if mode is None and MODE_KEY in known:
        mode = next(f.default for cls in dataclass_types for f in fields(cls) if f.name == MODE_KEY)

    layers.append((defaults, {k: "recipe defaults" for k in defaults}))
    if study_modes and mode in study_modes:
        block = study_modes[mode]
        layers.append((block, {k: f"recipe defaults (modes.{mode})" for k in block}))
    layers.append((file_values, {k: f"{config_path}:{lines.get(k, '?')}" for k in file_values}))
    if file_modes:
        if MODE_KEY not in known:
            raise ConfigError(f"{config_path}:{lines.get(PROFILES_KEY, '?')}: this recipe has no --{MODE_KEY}, so "
                              f"'{PROFILES_KEY}' blocks do not apply; move their values to the top level.")
        for name, block in file_modes.items():
            where = f"{config_path}:{lines.get(PROFILES_KEY, '?')}"
            if not isinstance(block, dict):
                raise ConfigError(f"{where}: modes.{name} must be a mapping of argument names to values.")
            unknown = sorted(set(block) - known) + ([MODE_KEY] if MODE_KEY in block else [])
            if unknown:
                raise ConfigError(f"{where}: unknown keys {unknown} in modes.{name}.")
        if mode in file_modes:
            block = file_modes[mode]
            layers.append((block, {k: f"{config_path}:{mode_lines.get(mode, {}).get(k, '?')} (modes.{mode})"
                                   for k in block}))

    file_mode = file_values.get(MODE_KEY)
    if file_mode is not None and mode != file_mode and mode not in file_modes:
        record.notes.append(f"{config_path} was written for mode {file_mode} and has no modes.{mode} block: its "
                            f"values apply to --mode {mode} unchanged.")

    merged: dict[str, Any] = {}
    for values, where in layers:  # every key is known: checked above where it was read
        merged.update(check_values(values, hints, where))
        record.sources.update(where)
    for name, flag in flags_given(argv, known).items():
        record.sources[name] = f"flag {flag}"
    return merged, record


def with_source(error: Exception, record: ConfigSources) -> str:
    """An error message from a dataclass's checks, with where the value it names came from."""
    message = str(error)
    for name in re.findall(r"--(\w+)", message):
        source = record.sources.get(name)
        if source and not source.startswith("flag"):
            message = message.rstrip()
            end = "." if message.endswith(".") else ""
            return f"{message.removesuffix(end)} (set in {source}){end}"
    return message


def effective_values(objects: tuple[Any, ...]) -> dict[str, Any]:
    """Every field of the parsed dataclasses, JSON-ready (TrainingArguments through its own to_dict)."""
    values: dict[str, Any] = {}
    for obj in objects:
        if hasattr(obj, "to_dict"):
            values.update(obj.to_dict())
        else:
            values.update({f.name: getattr(obj, f.name) for f in fields(obj)})
    return {k: (v.value if isinstance(v, enum.Enum) else v) for k, v in values.items()}


def non_default(objects: tuple[Any, ...], record: ConfigSources,
                values: dict[str, Any] | None = None) -> list[tuple[str, Any, str]]:
    """``(name, value, source)`` of each value set by a recipe, a file or a flag, in field order (``values``: the
    objects' ``effective_values`` when already computed)."""
    rows = []
    values = effective_values(objects) if values is None else values
    for obj in objects:
        for f in fields(obj):
            if f.name in record.sources and f.name in values:
                rows.append((f.name, values[f.name], record.sources[f.name]))
    return rows
