"""The one place that validates training settings: typed family configs, ``--set`` parsing, run options.

A family declares its settings as a dataclass of :func:`setting` fields (default, one-line help, the
valid range as a :class:`Rule`); ``gen-eval train FAMILY --help`` prints them and
:func:`resolve_config` turns ``--set`` values into a checked config dict. The loop's own options
(steps, seed, batch size, ...) are checked by :func:`check_run_options`. Everything is checked before
the loop creates or changes any file, and every problem is one UserError naming the key, the bad value
and the valid range. No torch import here (``--help`` must not pay for it).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gen_eval.devices import default_threads
from gen_eval.errors import UserError, param

MAX_SEED = 2**63 - 1
MAX_SIZE = 1024            # image_size
MAX_WIDTH = 8192           # channels / hidden units / embedding sizes
MAX_LATENT = 65536

# Options for the data reader, given as --set data.KEY=VALUE (with their types); other data.* keys are
# passed to gen_eval.data.open_dataset as strings (e.g. data.attribute=Smiling for CelebA).
DATA_OPTIONS: dict[str, Any] = {"split": "train", "eval_split": "heldout", "resize": False, "format": ""}


# -- valid ranges ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rule:
    """A valid range: ``text`` completes "KEY must be ...", ``ok`` tests a value of the field's type."""

    text: str
    ok: Callable[[Any], bool]


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


POSITIVE = Rule("a finite number > 0", lambda v: _finite(v) and v > 0)
NON_NEGATIVE = Rule("a finite number >= 0", lambda v: _finite(v) and v >= 0)
BELOW_ONE = Rule("a number in [0, 1)", lambda v: _finite(v) and 0 <= v < 1)
LABEL_VALUE = Rule("a number in (0, 1]", lambda v: _finite(v) and 0 < v <= 1)
BETAS = Rule("two numbers in [0, 1), e.g. [0.5, 0.999]",
             lambda v: len(v) == 2 and all(_finite(b) and 0 <= b < 1 for b in v))


def between(low: int, high: int) -> Rule:
    return Rule(f"an integer in [{low}, {high}]", lambda v: low <= v <= high)


def number_between(low: float, high: float) -> Rule:
    return Rule(f"a finite number in [{low:g}, {high:g}]", lambda v: _finite(v) and low <= v <= high)


def widths(most: int = 16) -> Rule:
    return Rule(f"a list of at most {most} integers in [1, {MAX_WIDTH}], e.g. [512, 256]",
                lambda v: len(v) <= most and all(1 <= h <= MAX_WIDTH for h in v))


def one_of(*choices: Any) -> Rule:
    return Rule("one of " + ", ".join(str(c) for c in choices), lambda v: v in choices)


def power_of_two(smallest: int = 8) -> Rule:
    return Rule(f"a power of two in [{smallest}, {MAX_SIZE}] (e.g. 64)",
                lambda v: smallest <= v <= MAX_SIZE and v & (v - 1) == 0)


def multiple_of(step: int) -> Rule:
    return Rule(f"a multiple of {step} in [{step}, {MAX_SIZE}] (e.g. 64)",
                lambda v: step <= v <= MAX_SIZE and v % step == 0)


IMAGE_SIZE = between(1, MAX_SIZE)
LATENT = between(1, MAX_LATENT)
WIDTH = between(1, MAX_WIDTH)
CONDITION_EMBED = between(0, MAX_WIDTH)    # 0: the raw condition, not embedded


def setting(default: Any, help: str, rule: Rule | None = None) -> Any:  # noqa: A002 - dataclass-style keyword
    """A config field: its default, one-line help for ``train FAMILY --help`` and its valid range."""
    meta = {"help": help, "rule": rule}
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def derive_config(base: type, name: str, drop: tuple[str, ...] = (), **defaults: Any) -> type:
    """A config dataclass with ``base``'s fields in the same order, less ``drop``, with other defaults."""
    fields = []
    for f in dataclasses.fields(base):
        if f.name in drop:
            continue
        default = defaults.pop(f.name, f.default if f.default is not dataclasses.MISSING else f.default_factory())
        fields.append((f.name, f.type, setting(default, f.metadata["help"], f.metadata["rule"])))
    if defaults:
        raise TypeError(f"{base.__name__} has no fields {sorted(defaults)}")
    return dataclasses.make_dataclass(name, fields, frozen=True)


# -- types ----------------------------------------------------------------------------------------------
def _type_name(field: dataclasses.Field) -> str:
    return field.type if isinstance(field.type, str) else getattr(field.type, "__name__", str(field.type))


_TYPE_WORDS = {"bool": "boolean (true/false)", "int": "integer", "float": "number", "str": "text",
               "list[int]": "list of integers", "list[float]": "list of numbers", "int | None": "integer or none",
               "float | None": "number or none"}


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _has_type(value: Any, type_name: str) -> bool:
    if type_name.endswith(" | None"):
        return value is None or _has_type(value, type_name[: -len(" | None")])
    if type_name.startswith("list["):
        inner = type_name[len("list["):-1]
        return isinstance(value, (list, tuple)) and all(_has_type(v, inner) for v in value)
    return {"bool": lambda v: isinstance(v, bool), "int": _is_int, "str": lambda v: isinstance(v, str),
            "float": lambda v: _is_int(v) or isinstance(v, float)}[type_name](value)


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value) if isinstance(value, (list, tuple)) else str(value)
    text = text if text.isprintable() else ascii(text)
    return text if len(text) <= 60 else text[:57] + "..."


def set_option(key: str, value: Any) -> str:
    """A family setting or data option named in a message: ``--set KEY=VALUE`` on the command line,
    ``config_overrides={KEY: VALUE}`` from Python (gen_eval.errors.param)."""
    return param("config_overrides", {key: value}, shown=f"{key}={value}")


def parse_setting(key: str, text: str, default: Any) -> Any:
    """Parse a ``--set`` value to the type of its default (bool, int, float, str; JSON when None)."""
    def bad(kind: str) -> UserError:
        example = str(default).lower() if isinstance(default, bool) else default
        return UserError(f"{set_option(key, _shown(text))}: {key} takes a {kind}, e.g. {set_option(key, example)}")

    lowered = text.strip().lower()
    if isinstance(default, bool):
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise bad("boolean (true/false)")
    if isinstance(default, int):
        try:
            return int(text)
        except ValueError:
            raise bad("integer") from None
    if isinstance(default, float):
        try:
            return float(text)
        except ValueError:
            raise bad("number") from None
    if isinstance(default, str):
        return text
    if lowered in ("none", "null", ""):
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _parse_typed(key: str, text: str, type_name: str, default: Any) -> Any:
    """A ``--set`` string parsed to the field's declared type (one-line UserError when it does not parse)."""
    if type_name.endswith(" | None"):
        if text.strip().lower() in ("none", "null", ""):
            return None
        type_name = type_name[: -len(" | None")]
        default = {"int": 0, "float": 0.0, "str": "", "bool": False}.get(type_name, default)
    if type_name.startswith("list["):
        try:
            value = json.loads(text)
        except (json.JSONDecodeError, RecursionError):
            value = text
        if not _has_type(value, type_name):
            raise UserError(f"{set_option(key, _shown(text))}: {key} takes a {_TYPE_WORDS[type_name]}, "
                            f"e.g. {set_option(key, json.dumps(default))}")
        return list(value)
    return parse_setting(key, text, default)


# -- family configs -------------------------------------------------------------------------------------
def config_defaults(config_cls: type) -> dict[str, Any]:
    return {f.name: (f.default if f.default is not dataclasses.MISSING else f.default_factory())
            for f in dataclasses.fields(config_cls)}


def build_config(config_cls: type, values: Mapping[str, Any] | Any) -> Any:
    """``values`` as a ``config_cls`` object: one already is; a mapping (settings by name, e.g. a
    checkpoint's) fills the fields it names, the others keep their defaults. Names ``config_cls`` does not
    have are left out: no family reads them (a checkpoint of an older version may hold retired settings)."""
    if isinstance(values, config_cls):
        return values
    names = {f.name for f in dataclasses.fields(config_cls)}
    return config_cls(**{key: value for key, value in dict(values).items() if key in names})


def resolve_config(family: str, config_cls: type, overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """Defaults updated by ``overrides`` (strings from ``--set`` are parsed), each checked by type and range."""
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    config = config_defaults(config_cls)
    for key, value in (overrides or {}).items():
        if key not in fields:
            raise UserError(f"{family} has no setting {key!r}; valid {param('config_overrides')} keys: "
                            f"{', '.join(sorted(fields))} "
                            f"('gen-eval train {family} --help' explains them)")
        field, type_name, given = fields[key], _type_name(fields[key]), value
        if isinstance(value, str) and type_name != "str":
            value = _parse_typed(key, value, type_name, config[key])
        if not _has_type(value, type_name):
            raise UserError(f"{set_option(key, _shown(given))}: {key} takes a {_TYPE_WORDS.get(type_name, type_name)}, "
                            f"e.g. {set_option(key, _shown(config[key]))}")
        rule: Rule | None = field.metadata.get("rule")
        if rule is not None and value is not None and not rule.ok(value):
            raise UserError(f"{set_option(key, _shown(given))}: {key} must be {rule.text}")
        config[key] = value
    return config


def describe_config(config_cls: type) -> list[tuple[str, str]]:
    """(``KEY=DEFAULT``, ``help; type, range``) rows for ``gen-eval train FAMILY --help``."""
    rows = []
    for f in dataclasses.fields(config_cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        shown = "none" if default is None else str(default).lower() if isinstance(default, bool) else _shown(default)
        rule: Rule | None = f.metadata.get("rule")
        kind = "true or false" if _type_name(f) == "bool" else _TYPE_WORDS.get(_type_name(f), _type_name(f))
        rows.append((f"{f.name}={shown}", f"{f.metadata['help']}; {rule.text if rule else kind}"))
    return rows


def split_overrides(overrides: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """``--set`` values -> (family settings, data options); ``data.KEY`` goes to the data reader."""
    family, data = {}, {}
    for key, value in (overrides or {}).items():
        if key.startswith("data."):
            name = key[len("data."):]
            if name in DATA_OPTIONS and isinstance(value, str):
                value = parse_setting(key, value, DATA_OPTIONS[name])
            data[name] = value
        else:
            family[key] = value
    return family, data


# -- the loop's own options -----------------------------------------------------------------------------
def check_run_options(*, steps: int | None, epochs: int | None, batch_size: int | None, seed: int | None,
                      checkpoint_every: int, log_every: int, workers: int) -> None:
    """One-line UserError for a bad loop option (before any file is created)."""
    if steps is not None and epochs is not None:
        raise UserError(f"give either {param('steps')} or {param('epochs')}, not both")
    for name, value in (("steps", steps), ("epochs", epochs), ("batch_size", batch_size),
                        ("checkpoint_every", checkpoint_every), ("log_every", log_every)):
        if value is not None and (not _is_int(value) or value < 1):
            raise UserError(f"{param(name)} must be a positive integer, got {value}")
    if seed is not None and (not _is_int(seed) or not 0 <= seed <= MAX_SEED):
        raise UserError(f"{param('seed', seed)}: the seed must be an integer in [0, 2^63-1], e.g. {param('seed', 0)}")
    if not _is_int(workers) or workers < 0:
        raise UserError(f"{param('workers')} must be 0 (load in this process) or a positive integer, got {workers}")
    # each worker is a process: bounded by the CPUs this process may use (at least the default 2,
    # since loader processes mostly wait on file reads)
    most = max(2, default_threads())
    if workers > most:
        raise UserError(f"{param('workers', workers)} is more than the {default_threads()} CPUs this process may "
                        f"use; give at most {param('workers', most)}")
