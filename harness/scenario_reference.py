"""The scenario file reference (docs/scenario.md) and JSON Schema, generated from the pydantic models.

Nothing here is written by hand that the models already say: sections, fields, types, defaults and
ranges come from ``harness.config``; meanings from the attribute docstrings (read with ``ast``, since the
models do not set ``use_attribute_docstrings``); fault types from the toxic registry and
``PROCESS_FAULTS``. Only rules that live in validators rather than in ``Field`` constraints are listed in
``VALIDATOR_RULES`` (tests/test_scenario_reference.py checks each one names a real field).

    harness schema --markdown > docs/scenario.md   # the reference
    harness schema > scenario.schema.json          # for editors
"""

from __future__ import annotations

import ast
import inspect
import json
import re
import textwrap
import types
from dataclasses import MISSING, fields
from functools import cache
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from harness.config import PROCESS_FAULTS, Scenario
from harness.faults import toxics as _builtin_toxics  # noqa: F401  (registers the built-in toxics)
from harness.faults.base import INT64_MAX, Toxic, registry

__all__ = ["REGENERATE", "VALIDATOR_RULES", "Section", "sections", "attribute_docstrings", "builtin_toxics",
           "render_reference", "scenario_json_schema"]

REGENERATE = "harness schema --markdown > docs/scenario.md"

VALIDATOR_RULES: dict[tuple[str, str], str] = {
    ("Scenario", "targets"): "built-in target names or names defined under `[target.<name>]`",
    ("Scenario", "cohorts"): "unique names; at least 2 users in total",
    ("Scenario", "faults"): "unique names; every occurrence must start before `[load] duration_s`",
    ("Scenario", "expect"): "keys: target names",
    ("FaultSpec", "type"): "a toxic or a process fault: see [Fault types](#fault-types)",
    ("FaultSpec", "cohort"): "a `[[cohorts]]` name; required for a toxic, absent for a process fault",
    ("FaultSpec", "attributes"): "the toxic's attributes only (none for a process fault), integers in their range",
    ("FaultSpec", "every_s"): "required when `repeat > 1`; must exceed `duration_s + jitter_s`",
    ("Readiness", "path"): "must start with `/`",
    ("Readiness", "pattern"): "required for `kind = \"log\"`; a valid regular expression",
    ("Readiness", "command"): "required for `kind = \"command\"`",
    ("FaultSpec", "port"): "one of the target's `ports`; toxics only",
    ("Readiness", "port"): "one of the target's `ports`",
    ("TargetDef", "command"): "exactly one of `command`, `url` or `urls`; every `{…}` a known placeholder; "
                              "`{secret}` is refused",
    ("TargetDef", "url"): "exactly one of `command`, `url` or `urls`",
    ("TargetDef", "urls"): "exactly one of `command`, `url` or `urls`; keys are port names",
    ("TargetDef", "ports"): "unique names matching `^[a-z][a-z0-9_]{0,31}$`; one only with `url`; the keys of "
                            "`urls`",
    ("TargetDef", "options"): "the driver's `Options` fields, each of its type",
    ("TargetDef", "driver"): "a registered driver name or `package.module:UserClass`",
    ("Cohort", "send_to"): "`rooms` needs the cohort's `rooms`",
    ("Cohort", "rooms"): "the target must serve rooms (`rooms = true`; built in: naive, ackmap, redis-store, sse, "
                         "node-socketio-csr)",
    ("MembershipChange", "cohort"): "a `[[cohorts]]` name",
    ("MembershipChange", "at_s"): "every occurrence before `[load] duration_s`",
    ("MembershipChange", "every_s"): "required when `repeat > 1`",
}
"""Rules enforced by model validators (not visible as Field constraints), by (model class name, field)."""

_DEFAULTS: dict[tuple[str, str], str] = {("Scenario", "name"): "the file's name without `.toml`"}
"""Defaults the loader supplies, not the model (``load_scenario`` sets ``name`` from the file)."""

_PLACEHOLDER = {"expect": "target", "target": "name"}
"""The key a TOML reader writes for a table of tables, e.g. ``[expect.<target>]``."""


class Section:
    """One table of the reference: its TOML header (``""`` for the top level) and the model behind it."""

    def __init__(self, header: str, model: type[BaseModel]) -> None:
        self.header = header
        self.model = model

    @property
    def title(self) -> str:
        return f"`{self.header}`" if self.header else "Top level"

    def __repr__(self) -> str:
        return f"Section({self.header!r}, {self.model.__name__})"


def _strip_optional(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _nested(annotation: Any) -> tuple[str, type[BaseModel]] | None:
    """("table" | "array" | "map", model) when a field holds a model, a list of them or a dict of them."""
    annotation = _strip_optional(annotation)
    if _is_model(annotation):
        return "table", annotation
    args = get_args(annotation)
    if get_origin(annotation) is list and args and _is_model(args[0]):
        return "array", args[0]
    if get_origin(annotation) is dict and len(args) == 2 and _is_model(args[1]):
        return "map", args[1]
    return None


def sections() -> list[Section]:
    """Every table a scenario file can have, depth first in field order, the top level first."""
    found = [Section("", Scenario)]

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, info in model.model_fields.items():
            nested = _nested(info.annotation)
            if nested is None:
                continue
            kind, sub = nested
            key = f"{prefix}{name}"
            if kind == "map":
                key = f"{key}.<{_PLACEHOLDER.get(name, 'key')}>"
            found.append(Section(f"[[{key}]]" if kind == "array" else f"[{key}]", sub))
            walk(sub, f"{key}.")

    walk(Scenario, "")
    return found


@cache
def attribute_docstrings(model: type[BaseModel]) -> dict[str, str]:
    """Field name → its attribute docstring (the string literal right after it), inherited ones included."""
    found: dict[str, str] = {}
    for cls in reversed(model.__mro__):
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)) or cls is BaseModel:
            continue
        try:
            source = textwrap.dedent(inspect.getsource(cls))
        except (OSError, TypeError):
            continue
        body = next((n for n in ast.parse(source).body if isinstance(n, ast.ClassDef)), None)
        if body is None:
            continue
        for node, after in zip(body.body, body.body[1:], strict=False):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                    and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                    and isinstance(after.value.value, str)):
                found[node.target.id] = inspect.cleandoc(after.value.value)
    return found


def _meaning(model: type[BaseModel], name: str, info: FieldInfo) -> str:
    return info.description or attribute_docstrings(model).get(name, "")


def _md(text: str) -> str:
    """One table cell: reST ``code`` as Markdown `code`, on one line, pipes escaped."""
    text = re.sub(r"``(.+?)``", r"`\1`", text, flags=re.S)
    return " ".join(text.split()).replace("|", "\\|")


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }" if value else "{}"
    return repr(value)


def _type(annotation: Any) -> str:
    """TOML's names for a field's type (a float field takes an integer too)."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, types.UnionType):
        return " or ".join(dict.fromkeys(_type(a) for a in args if a is not type(None)))
    if origin is Literal:
        return " or ".join(dict.fromkeys(
            "boolean" if isinstance(a, bool) else "string" if isinstance(a, str) else "integer" for a in args))
    if origin is list:
        return f"array of {_type(args[0])}" if args else "array"
    if origin is dict:
        return "table" if not args or args[1] is Any else f"table of {_type(args[1])}"
    if _is_model(annotation):
        return "table"
    names = {bool: "boolean", int: "integer", float: "float", str: "string"}
    return names.get(annotation, "any") if isinstance(annotation, type) or annotation is Any else str(annotation)


def _choices(annotation: Any) -> list[Any]:
    """The values a Literal (possibly inside a union with bool) allows; [] when it is not one."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return list(args)
    if origin in (Union, types.UnionType):
        literals = [v for a in args for v in _choices(a)]
        if literals and bool in args:
            literals = [True, False, *literals]
        return literals
    return []


def _number(value: Any) -> str:
    return "int64 max" if value == INT64_MAX else str(value)


def _range(low: tuple[str, Any] | None, high: tuple[str, Any] | None) -> str:
    if low and high:
        return f"{_number(low[1])} {low[0]} x {high[0]} {_number(high[1])}"
    if low:
        return f"x {'>' if low[0] == '<' else '≥'} {_number(low[1])}"
    if high:
        return f"x {high[0]} {_number(high[1])}"
    return ""


def _allowed(model: type[BaseModel], name: str, info: FieldInfo) -> str:
    low: tuple[str, Any] | None = None
    high: tuple[str, Any] | None = None
    parts: list[str] = []
    container = get_origin(_strip_optional(info.annotation)) in (list, dict)
    for item in info.metadata:
        if getattr(item, "gt", None) is not None:
            low = ("<", item.gt)
        if getattr(item, "ge", None) is not None:
            low = ("≤", item.ge)
        if getattr(item, "lt", None) is not None:
            high = ("<", item.lt)
        if getattr(item, "le", None) is not None:
            high = ("≤", item.le)
        if getattr(item, "min_length", None) is not None:
            unit = "item" if container else "character"
            parts.append(f"at least {item.min_length} {unit}{'s' if item.min_length != 1 else ''}")
        if getattr(item, "max_length", None) is not None:
            parts.append(f"at most {item.max_length} {'items' if container else 'characters'}")
        if getattr(item, "pattern", None) is not None:
            parts.append(f"matches `{item.pattern}`")
    bounds = _range(low, high)
    if bounds:
        parts.insert(0, f"`{bounds}`")
    choices = _choices(info.annotation)
    if choices:
        parts.insert(0, ", ".join(f"`{_toml(c)}`" for c in choices))
    rule = VALIDATOR_RULES.get((model.__name__, name))
    if rule:
        parts.append(rule)
    return "; ".join(parts) or "—"


def _default(info: FieldInfo) -> str:
    if info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
        if isinstance(value, BaseModel):
            return "(all defaults)"
        return f"`{_toml(value)}`"
    if info.is_required():
        return "**required**"
    if info.default is None:
        return "unset"
    return f"`{_toml(info.default)}`"


def _link(header: str) -> str:
    """GitHub's anchor for a ``## `header` `` heading."""
    return "#" + re.sub(r"[^\w\- ]", "", header).replace(" ", "-").lower()


def _section_table(section: Section, by_model: dict[type[BaseModel], Section]) -> list[str]:
    lines = ["| field | type | default | allowed | meaning |", "|---|---|---|---|---|"]
    for name, info in section.model.model_fields.items():
        nested = _nested(info.annotation)
        meaning = _md(_meaning(section.model, name, info))
        kind = _type(info.annotation)
        if nested is not None and nested[1] in by_model:
            target = by_model[nested[1]].header
            kind = f"{kind} ([`{target}`]({_link(target)}))"
            if not meaning:
                meaning = _md(_first_sentence(nested[1].__doc__ or ""))
        default = _DEFAULTS.get((section.model.__name__, name)) or _default(info)
        lines.append(f"| `{name}` | {_md(kind)} | {default} | "
                     f"{_allowed(section.model, name, info)} | {meaning or '—'} |")
    return lines


def _first_sentence(doc: str) -> str:
    return re.split(r"(?<=[.])\s", " ".join(doc.split()), maxsplit=1)[0]


def builtin_toxics() -> dict[str, type[Toxic]]:
    """The toxics this package registers (plug-ins imported elsewhere in the process are left out)."""
    return {name: cls for name, cls in registry().items() if cls.__module__.startswith("harness.faults.")}


def _units(cls: type[Toxic]) -> dict[str, str]:
    """Attribute → unit, from the comment on its line in the class source (``latency: int = …  # ms``)."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    found = {}
    for line in source.splitlines():
        match = re.match(r"\s*(\w+)\s*:\s*int\b[^#]*#\s*([^;]+)", line)
        if match:
            found[match.group(1)] = match.group(2).strip()
    return found


def _toxic_rows() -> list[str]:
    lines = ["| type | attribute | unit | default | range | what it does |", "|---|---|---|---|---|---|"]
    for name, cls in builtin_toxics().items():
        doc = _md(inspect.cleandoc(cls.__doc__ or ""))
        ranges, units = cls.attribute_ranges(), _units(cls)
        defaults = {f.name: f.default for f in fields(cls)}
        names = cls.attribute_names()
        if not names:
            lines.append(f"| `{name}` | — | — | — | — | {doc} |")
        for index, attribute in enumerate(names):
            low, high = ranges[attribute]
            default = defaults.get(attribute, MISSING)
            shown = "—" if default is MISSING else f"`{_toml(default)}`"
            lines.append(f"| {f'`{name}`' if index == 0 else ''} | `{attribute}` | {units.get(attribute, '—')} | "
                         f"{shown} | `{_number(low)} ≤ x ≤ {_number(high)}` | {doc if index == 0 else ''} |")
    return lines


def render_reference() -> str:
    """docs/scenario.md: every table, field, type, default, range and meaning of a scenario file."""
    found = sections()
    by_model = {s.model: s for s in found}
    out = [
        "# Scenario file reference",
        "",
        f"<!-- Generated from harness/config.py by `{REGENERATE}`. Do not edit by hand: "
        "tests/test_scenario_reference.py fails when this file and the models disagree. -->",
        "",
        "A scenario is one TOML file (examples: `scenarios/*.toml`); `harness run FILE` loads it and refuses it "
        "with the file, the field (dotted path) and the reason when anything is wrong. Unknown fields are "
        "errors, `inf` and `nan` are refused everywhere, and a float field also takes an integer. "
        "*unset* means the field is left out (TOML has no null).",
        "",
        f"This file is generated: `{REGENERATE}`. For editors, `harness schema > scenario.schema.json` writes "
        "the JSON Schema of the same models (e.g. for Taplo / Even Better TOML, start a scenario with "
        "`#:schema ./scenario.schema.json`); rules that need more than one field are checked only by the loader.",
        "",
        "Tables: " + ", ".join(f"[{s.title}]({_link(s.title if not s.header else s.header)})" for s in found) + ".",
    ]
    for section in found:
        out += ["", f"## {section.title}", ""]
        doc = inspect.cleandoc(section.model.__doc__ or "")
        if doc:
            out += [_md(doc), ""]
        out += _section_table(section, by_model)
    out += [
        "",
        "## Fault types",
        "",
        "`type` in `[[faults]]` is either a toxic, applied by the fault proxy to one cohort's listener "
        "(`cohort` required; `stream`, `toxicity` and `attributes` apply), or a process fault (no `cohort`, "
        "no `attributes`). Toxic attributes are integers, checked by name and range when the scenario loads "
        "(docs/proxy.md).",
        "",
        "### Toxics",
        "",
        *_toxic_rows(),
        "",
        "### Process faults",
        "",
        "| type | what happens |",
        "|---|---|",
        *(f"| `{name}` | {_md(text)} |" for name, text in PROCESS_FAULTS.items()),
        "",
        "## Rooms",
        "",
        "A cohort with `rooms` joins them once connected (each join is a `join` row in the ledger: asked, then "
        "the server's answer) and asks again after every reconnect, as an app's connect handler would; with "
        "`send_to = \"rooms\"` its sends go to those rooms in turn. `[[membership]]` makes a cohort join or "
        "leave a room while messages flow. What each member must receive (`harness/checker/rooms.py`):",
        "",
        "- every message **acknowledged** while it was a member: after its join was acknowledged and before its "
        "leave was sent, across its own outages (a server that forgets a member while it is away loses those "
        "messages);",
        "- nothing is expected of a member who joins later (no history on join) or after it asked to leave; "
        "copies that reach a member whose join or leave raced the send, or the sender itself, are allowed;",
        "- any other copy is **unexpected**: a user who was not a member, or a copy in another room.",
        "",
        "Each (message, member) pair is then judged like a direct message: lost, duplicated, unseen (no fair "
        "chance), ordering per sender → room → member when the target claims order. `details.rooms` in "
        "verdict.json adds the fan-out (expected receipts per acknowledged send) and the *stable latency*: "
        "send → the last member's receipt.",
        "",
    ]
    return "\n".join(out)


def scenario_json_schema() -> dict[str, Any]:
    """``Scenario.model_json_schema()`` for editors, with each property's attribute docstring as its
    description, and ``name`` optional (the loader defaults it to the file's name)."""
    schema: dict[str, Any] = Scenario.model_json_schema()
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
    defs = schema.get("$defs", {})
    for section in sections():
        node = schema if section.model is Scenario else defs.get(section.model.__name__)
        if node is None:
            continue
        for name, prop in node.get("properties", {}).items():
            info = section.model.model_fields.get(name)
            meaning = _meaning(section.model, name, info) if info is not None else ""
            if meaning and "description" not in prop:
                prop["description"] = " ".join(re.sub(r"``(.+?)``", r"\1", meaning).split())
    schema["required"] = [r for r in schema.get("required", []) if r != "name"]
    return schema
