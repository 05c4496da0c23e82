"""``ContainerImagePrepare`` entries: strict validation into immutable values.

Every problem is reported as one :class:`ConfigurationError` naming the file, the entry
(``ContainerImagePrepare[1]``) and the key, so an operator can go straight to the line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from imageprep.catalogue.labeltemplate import LabelTemplate
from imageprep.model.errors import ConfigurationError
from imageprep.model.location import Location
from imageprep.model.reference import DOMAIN

ENTRY_KEYS = frozenset(
    {
        "set",
        "tag_from_label",
        "includes",
        "excludes",
        "push_destination",
        "pull_source",
        "modify_role",
        "modify_vars",
        "modify_append_tag",
        "modify_only_with_labels",
        "modify_only_with_source",
        "multi_arch",
    }
)
# `set` keys that may be null (they mean "empty" or "detect").
NULLABLE_SET_KEYS = frozenset({"name_prefix", "name_suffix", "neutron_driver"})
BOOLEAN_SET_KEYS = frozenset({"ceph_images"})
_APPEND_TAG = re.compile(r"[\w.-]*")


@dataclass(frozen=True, slots=True)
class PrepareEntry:
    """One validated entry of a ContainerImagePrepare list."""

    index: int
    origin: str
    set_values: MappingProxyType[str, Any]
    tag_from_label: LabelTemplate | None = None
    includes: tuple[re.Pattern[str], ...] = ()
    excludes: tuple[re.Pattern[str], ...] = ()
    push_destination: Location | None = None
    pull_source: str | None = None
    modify_role: str | None = None
    modify_vars: MappingProxyType[str, Any] | None = None
    modify_append_tag: str | None = None
    modify_only_with_labels: tuple[str, ...] | None = None
    modify_only_with_source: tuple[str, ...] | None = None
    multi_arch: bool | None = None

    @property
    def pushes(self) -> bool:
        """Whether images of this entry are copied somewhere."""
        return self.push_destination is not None


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, int | float):
        return f"a number ({value!r})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


class _EntryReader:
    """Reads one raw entry; every error names the entry's origin and the key."""

    def __init__(
        self, raw: Mapping[Any, Any], origin: str, string_set_keys: frozenset[str], local_registry: str
    ) -> None:
        self.raw = raw
        self.origin = origin
        self.string_set_keys = string_set_keys
        self.local_registry = local_registry

    def fail(self, key: str, problem: str, hint: str | None = None) -> ConfigurationError:
        return ConfigurationError(f"{self.origin}: {key}: {problem}", hint=hint)

    def string(self, key: str, *, allow_empty: bool = False) -> str | None:
        value = self.raw.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.fail(key, f"must be a string, not {_type_name(value)}")
        if not value and not allow_empty:
            raise self.fail(key, "must not be empty")
        return value

    def string_list(self, key: str) -> tuple[str, ...] | None:
        value = self.raw.get(key)
        if value is None:
            return None
        if isinstance(value, str):
            raise self.fail(
                key,
                f"must be a list of strings, not {_type_name(value)}",
                hint=f"write `{key}: [{value}]` or one `- {value}` item per line",
            )
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self.fail(key, f"must be a list of strings, not {_type_name(value)}")
        return tuple(value)

    def patterns(self, key: str) -> tuple[re.Pattern[str], ...]:
        compiled = []
        for pattern in self.string_list(key) or ():
            try:
                compiled.append(re.compile(pattern))
            except re.error as exc:
                raise self.fail(key, f"{pattern!r} is not a valid regular expression: {exc}") from exc
        return tuple(compiled)

    def mapping(self, key: str) -> MappingProxyType[str, Any] | None:
        value = self.raw.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.fail(key, f"must be a mapping, not {_type_name(value)}")
        return MappingProxyType(dict(value))

    def boolean(self, key: str) -> bool | None:
        value = self.raw.get(key)
        if value is None:
            return None
        if not isinstance(value, bool):
            raise self.fail(key, f"must be true or false, not {_type_name(value)}")
        return value

    def host(self, key: str, value: str) -> str:
        host = value.rstrip("/")
        if not DOMAIN.fullmatch(host):
            raise self.fail(key, f"{value!r} is not a registry address", hint="use HOST or HOST:PORT")
        return host

    def set_values(self) -> MappingProxyType[str, Any]:
        value = self.raw.get("set")
        if value is None:
            return MappingProxyType({})
        if not isinstance(value, dict):
            raise self.fail("set", f"must be a mapping of template variables, not {_type_name(value)}")
        checked: dict[str, Any] = {}
        for name, item in value.items():
            if not isinstance(name, str):
                raise self.fail("set", f"variable names must be strings, not {_type_name(name)}")
            checked[name] = self.set_value(name, item)
        return MappingProxyType(checked)

    def set_value(self, name: str, value: Any) -> Any:
        key = f"set.{name}"
        if name in BOOLEAN_SET_KEYS:
            if not isinstance(value, bool):
                raise self.fail(key, f"must be true or false, not {_type_name(value)}")
            return value
        if value is None and name in NULLABLE_SET_KEYS:
            return None
        if name not in self.string_set_keys and name not in NULLABLE_SET_KEYS:
            return value  # not ours: handed to the template untouched
        if isinstance(value, bool) or value is None:
            raise self.fail(key, f"must be a string, not {_type_name(value)}")
        if isinstance(value, float):
            raise self.fail(
                key,
                f"must be a string, not {_type_name(value)}",
                hint=f"quote it (`{name}: '...'`): YAML reads unquoted numbers with a dot as floats",
            )
        if isinstance(value, int):
            return str(value)
        if not isinstance(value, str):
            raise self.fail(key, f"must be a string, not {_type_name(value)}")
        return value

    def entry(self, index: int) -> PrepareEntry:
        unknown = sorted(str(key) for key in self.raw if key not in ENTRY_KEYS)
        if unknown:
            raise self.fail(
                unknown[0],
                "unknown key" if len(unknown) == 1 else f"unknown keys ({', '.join(unknown)})",
                hint=f"valid keys: {', '.join(sorted(ENTRY_KEYS))}",
            )
        label_text = self.string("tag_from_label")
        tag_from_label = None
        if label_text is not None:
            try:
                tag_from_label = LabelTemplate.parse(label_text)
            except ValueError as exc:
                raise self.fail(
                    "tag_from_label", f"{label_text!r} is not a valid label template: {exc}"
                ) from exc
        push = self.raw.get("push_destination")
        push_destination = None
        if isinstance(push, str):
            push_destination = Location.of(self.host("push_destination", push), self.local_registry)
        elif push is True:
            push_destination = Location.local_registry(self.local_registry)
        elif push is not None and push is not False:
            raise self.fail("push_destination", f"must be true, false or HOST:PORT, not {_type_name(push)}")
        pull_source = self.string("pull_source")
        append_tag = self.string("modify_append_tag", allow_empty=True)
        if append_tag is not None and not _APPEND_TAG.fullmatch(append_tag):
            raise self.fail(
                "modify_append_tag",
                f"{append_tag!r} cannot be part of a tag",
                hint="use letters, digits, '_', '.', '-'",
            )
        return PrepareEntry(
            index=index,
            origin=self.origin,
            set_values=self.set_values(),
            tag_from_label=tag_from_label,
            includes=self.patterns("includes"),
            excludes=self.patterns("excludes"),
            push_destination=push_destination,
            pull_source=self.host("pull_source", pull_source) if pull_source else None,
            modify_role=self.string("modify_role"),
            modify_vars=self.mapping("modify_vars"),
            modify_append_tag=append_tag,
            modify_only_with_labels=self.string_list("modify_only_with_labels"),
            modify_only_with_source=self.string_list("modify_only_with_source"),
            multi_arch=self.boolean("multi_arch"),
        )


def parse_entries(
    value: Any, *, origin: str, parameter: str, string_set_keys: frozenset[str], local_registry: str
) -> tuple[PrepareEntry, ...]:
    """Validate a ContainerImagePrepare value found in ``origin`` (a file name).

    ``string_set_keys`` are the `set` variables that must be strings (those the defaults define);
    ``local_registry`` is the local registry's address, what ``push_destination: true`` means.
    """
    if not isinstance(value, list):
        raise ConfigurationError(
            f"{origin}: {parameter} must be a list of entries, not {_type_name(value)}",
            hint=f"start each entry with `- ` under {parameter}:",
        )
    entries = []
    for index, raw in enumerate(value):
        where = f"{origin}: {parameter}[{index}]"
        if not isinstance(raw, dict):
            raise ConfigurationError(f"{where}: an entry must be a mapping, not {_type_name(raw)}")
        entries.append(_EntryReader(raw, where, string_set_keys, local_registry).entry(index))
    return tuple(entries)
