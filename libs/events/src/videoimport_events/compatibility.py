"""The contract as JSON Schemas, and which changes to it break subscribers.

The contract is one JSON Schema per event type and schema version (and one for
the envelope), as ``contract_of`` derives them from the Structs. A copy is
committed in ``libs/events/contract/`` (``<Type>.v<N>.json``); ``make asyncapi``
updates it, refusing breaking changes, and a test compares it with the code.

Rules, from what stored events and existing subscribers need (the event log is
read again from its start by rebuilds and republishes, so an event recorded
years ago must still decode, and a subscriber must still find what it used):

* a type, or a field, must not disappear;
* a field keeps its type: no other JSON type, format or nested shape, no
  alternative added or dropped (a field that may now be null breaks readers too);
* an enumeration (``Literal``) may gain values but not lose any, and a free
  string must not become an enumeration;
* a new field needs a default (events recorded before it lack it), and an
  optional field must not become required;
* any other difference between two schemas is breaking: what this module cannot
  classify, it does not let through.

New types, new optional fields and new enumeration values are fine. A change
that breaks these rules gets a new, separately named type, or a new schema
version of the type with an upcaster per step (``upcasting``).

Pure: the caller reads and writes the files.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import msgspec
import msgspec.inspect as mi

from videoimport_events.base import Event
from videoimport_events.catalog import EVENT_TYPES, Envelope
from videoimport_events.upcasting import UPCASTERS, Upcasters

Schema = dict[str, Any]
ContractKey = tuple[str, int]
"""(type name, schema version)."""
Contract = Mapping[ContractKey, Schema]

ENVELOPE: Final = "Envelope"
ENVELOPE_VERSION: Final = 1
"""The envelope is versioned with the document: its fields follow the same rules."""

_FILE_NAME: Final = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)\.v(?P<version>[1-9][0-9]*)\.json")
# Keywords that only document; a difference in any other keyword is a change.
_ANNOTATIONS: Final = frozenset({"title", "description", "default", "examples", "$comment"})


def schema_components(types: Iterable[type[msgspec.Struct]]) -> tuple[list[Schema], Schema]:
    """``msgspec.json.schema_components``, plus ``format: date-time`` for datetimes
    and docstrings dedented.

    msgspec leaves the format out for a datetime that may be naive; every
    timestamp of this contract is UTC (RFC 3339), and without the format a field
    turning from datetime into str would look unchanged.
    """
    classes = list(types)
    roots, components = msgspec.json.schema_components(classes)
    for schema in components.values():
        if "description" in schema:  # a docstring: without its source indentation
            schema["description"] = inspect.cleandoc(schema["description"])
    for info in _struct_infos(classes):
        properties = components.get(info.cls.__name__, {}).get("properties", {})
        for field in info.fields:
            if field.encode_name in properties and _is_datetime(field.type):
                _add_datetime_format(properties[field.encode_name])
    return list(roots), components


def contract_of(types: Mapping[str, type[Event]] = EVENT_TYPES) -> dict[ContractKey, Schema]:
    """The current contract: a self-contained JSON Schema per type (and the envelope)."""
    contract: dict[ContractKey, Schema] = {}
    for name, cls in types.items():
        (root,), components = schema_components([cls])
        contract[(name, cls.schema_version)] = {**root, "$defs": components}
    (root,), components = schema_components([Envelope])
    envelope = components.pop(ENVELOPE)
    # Each event type has its own entry: here ``data`` is only "an event object".
    envelope["properties"]["data"] = {"type": "object", "description": "The event (see its type)."}
    contract[(ENVELOPE, ENVELOPE_VERSION)] = {**root, "$defs": {ENVELOPE: envelope}}
    return contract


def file_name(key: ContractKey) -> str:
    return f"{key[0]}.v{key[1]}.json"


def key_of(name: str) -> ContractKey:
    """The (type, version) of a contract file name; ValueError for anything else."""
    match = _FILE_NAME.fullmatch(name)
    if match is None:
        raise ValueError(f"not a contract file name (<Type>.v<N>.json): {name!r}")
    return match["name"], int(match["version"])


@dataclass(frozen=True)
class BreakingChange:
    type_name: str
    version: int
    field: str | None
    """Dotted path of the field (``overview.total``), None for the type itself."""
    problem: str

    def __str__(self) -> str:
        where = f"{self.type_name} v{self.version}"
        if self.field is not None:
            where += f" field `{self.field}`"
        return f"{where}: {self.problem}"


def breaking_changes(
    recorded: Contract, current: Contract, upcasters: Upcasters = UPCASTERS
) -> list[BreakingChange]:
    """What in ``current`` breaks the ``recorded`` contract (empty: compatible)."""
    versions: dict[str, int] = {}
    for name, version in current:
        versions[name] = max(version, versions.get(name, 0))
    found: list[BreakingChange] = []
    for (name, version), old in sorted(recorded.items()):
        now = versions.get(name)
        if now is None:
            found.append(BreakingChange(name, version, None, "type removed"))
        elif now < version:
            problem = f"schema version went back to v{now}"
            found.append(BreakingChange(name, version, None, problem))
        elif now > version:
            for step in upcasters.missing_steps(name, version, now):
                problem = f"no upcaster from v{step} to v{step + 1} (current: v{now})"
                found.append(BreakingChange(name, version, None, problem))
        else:
            diff = _Diff(old, current[(name, version)])
            diff.objects(_root(old), _root(current[(name, version)]), "")
            found += [BreakingChange(name, version, path or None, p) for path, p in diff.found]
    return found


# ----------------------------------------------------------------------- comparison


def _root(schema: Schema) -> Schema:
    ref = schema.get("$ref")
    return schema if ref is None else _resolve(schema, ref)


def _resolve(document: Schema, ref: str) -> Schema:
    name = ref.rsplit("/", 1)[-1]
    resolved: Schema = document.get("$defs", {})[name]
    return resolved


class _Diff:
    """Compares two schemas of one contract entry; collects (field path, problem)."""

    def __init__(self, old_document: Schema, new_document: Schema) -> None:
        self.old_document = old_document
        self.new_document = new_document
        self.found: list[tuple[str, str]] = []

    def objects(self, old: Schema, new: Schema, path: str) -> None:
        old_props: Schema = old.get("properties", {})
        new_props: Schema = new.get("properties", {})
        old_required, new_required = set(old.get("required", ())), set(new.get("required", ()))
        for name, old_prop in old_props.items():
            where = f"{path}.{name}" if path else name
            if name not in new_props:
                self.found.append((where, "removed"))
                continue
            if name in new_required and name not in old_required:
                self.found.append((where, "became required (events recorded before lack it)"))
            self.values(old_prop, new_props[name], where)
        for name in new_props.keys() - old_props.keys():
            if name in new_required:
                where = f"{path}.{name}" if path else name
                self.found.append((where, "new required field without a default"))
        self._rest(old, new, path, {"type", "properties", "required"})

    def values(self, old: Schema, new: Schema, path: str) -> None:
        old_alts = self._alternatives(old, self.old_document)
        new_alts = self._alternatives(new, self.new_document)
        # A Literal that became its base type (str) accepts every old value: fine.
        widened = {k for k in old_alts.keys() - new_alts.keys() if k[0] == "enum"}
        widened = {k for k in widened if (k[1], "") in new_alts.keys() - old_alts.keys()}
        bases = {(k[1], "") for k in widened}
        if old_alts.keys() - widened != new_alts.keys() - bases:
            described = _describe(old_alts), _describe(new_alts)
            self.found.append((path, "type changed from {} to {}".format(*described)))
            return
        for kind, old_alt in old_alts.items():
            if kind in widened:
                continue
            new_alt = new_alts[kind]
            if kind[0] == "enum":
                lost = [v for v in old_alt["enum"] if v not in new_alt["enum"]]
                if lost:
                    values = ", ".join(repr(v) for v in lost)
                    self.found.append((path, f"enumeration narrowed: {values} no longer allowed"))
                self._rest(old_alt, new_alt, path, {"enum"})
            elif kind[0] == "struct":
                self.objects(old_alt, new_alt, path)
            elif kind[0] == "array":
                self.values(old_alt.get("items", {}), new_alt.get("items", {}), f"{path}[]")
                self._rest(old_alt, new_alt, path, {"type", "items"})
            elif kind[0] == "object":
                old_values = old_alt.get("additionalProperties", {})
                new_values = new_alt.get("additionalProperties", {})
                self.values(old_values, new_values, f"{path}{{}}")
                self._rest(old_alt, new_alt, path, {"type", "additionalProperties"})
            else:
                self._rest(old_alt, new_alt, path, {"type", "format"})

    def _alternatives(self, schema: Schema, document: Schema) -> dict[tuple[str, str], Schema]:
        """The schema's alternatives by kind: ``("string", "date-time")``, ``("enum", "string")``,
        ``("struct", "")``, ``("array", "")``; ``$ref``s resolved, ``anyOf`` flattened."""
        alternatives = schema.get("anyOf", [schema])
        resolved = [_resolve(document, a["$ref"]) if "$ref" in a else a for a in alternatives]
        structs = sum(1 for a in resolved if "properties" in a)
        kinds: dict[tuple[str, str], Schema] = {}
        for alt in resolved:
            kinds[_kind(alt, by_title=structs > 1)] = alt
        return kinds

    def _rest(self, old: Schema, new: Schema, path: str, compared: set[str]) -> None:
        """Any other keyword that differs (a bound, a pattern …) is reported, not guessed."""
        skip = compared | _ANNOTATIONS | {"anyOf", "$ref", "$defs"}
        old_rest = {k: v for k, v in old.items() if k not in skip}
        new_rest = {k: v for k, v in new.items() if k not in skip}
        if old_rest != new_rest:
            self.found.append((path, f"constraints changed from {old_rest} to {new_rest}"))


def _kind(schema: Schema, *, by_title: bool) -> tuple[str, str]:
    if "enum" in schema:
        return "enum", _json_type(schema["enum"][0]) if schema["enum"] else "none"
    if "properties" in schema:
        return "struct", schema.get("title", "") if by_title else ""
    kind = schema.get("type", "any")
    if isinstance(kind, list):  # not emitted by msgspec; compared as a whole
        kind = "|".join(sorted(kind))
    return kind, schema.get("format", "") if kind == "string" else ""


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "null" if value is None else "string"


def _describe(alternatives: Mapping[tuple[str, str], Schema]) -> str:
    names = []
    for (kind, detail), alt in sorted(alternatives.items()):
        if kind == "enum":
            names.append("one of " + ", ".join(repr(v) for v in alt["enum"]))
        elif kind == "struct":
            names.append(f"object {alt.get('title', '')}".strip())
        else:
            names.append(f"{kind} ({detail})" if detail else kind)
    return " or ".join(names)


# ------------------------------------------------------------------ datetime formats


def _struct_infos(classes: list[type[msgspec.Struct]]) -> list[mi.StructType]:
    """Every Struct reachable from ``classes`` (nested ones and union members too)."""
    seen: dict[type, mi.StructType] = {}
    stack: list[mi.Type] = list(mi.multi_type_info(classes))
    while stack:
        t = stack.pop()
        if isinstance(t, mi.StructType):
            if t.cls in seen:
                continue
            seen[t.cls] = t
            stack += [f.type for f in t.fields]
        elif isinstance(t, mi.UnionType):
            stack += list(t.types)
        elif isinstance(t, mi.CollectionType):
            stack.append(t.item_type)
        elif isinstance(t, mi.DictType):
            stack.append(t.value_type)
    return list(seen.values())


def _is_datetime(t: mi.Type) -> bool:
    if isinstance(t, mi.UnionType):
        return any(isinstance(u, mi.DateTimeType) for u in t.types)
    return isinstance(t, mi.DateTimeType)


def _add_datetime_format(prop: Schema) -> None:
    for alt in prop.get("anyOf", [prop]):
        if alt.get("type") == "string" and "format" not in alt:
            alt["format"] = "date-time"
