"""Rendering the catalogue template into the list of images one entry knows about."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imageprep.catalogue.cache import compiled_template, load_rendered, rendered_key, store_rendered
from imageprep.catalogue.yamlfile import parse_yaml
from imageprep.model.errors import CatalogueError, ConfigurationError

if TYPE_CHECKING:
    import jinja2

TEMPLATE_RESOURCE = "tripleo_containers.yaml.j2"


@dataclass(frozen=True, slots=True)
class CatalogueImage:
    """One image of the rendered catalogue."""

    reference: str
    source: str
    params: tuple[str, ...]
    services: frozenset[str]


def _yaml_double_quoted(value: Any) -> str:
    """Every value the template prints sits inside a double-quoted scalar: escape what would end it."""
    text = "" if value is None else str(value)
    return json.dumps(text)[1:-1]  # JSON string escapes are valid YAML double-quoted escapes


class CatalogueTemplate:
    """The Jinja2 catalogue; rendered once per entry with that entry's variables."""

    def __init__(
        self, text: str, origin: str, *, builtin: bool = False, cache_dir: Path | None = None
    ) -> None:
        self.text = text
        self.origin = origin
        # The built-in template puts operators' values in only as quoted scalars, so what it
        # renders is as safe to parse as the package's own data.
        self._builtin = builtin
        self._cache_dir = cache_dir

    @classmethod
    def builtin(cls, cache_dir: Path | None = None) -> CatalogueTemplate:
        """The catalogue shipped with imageprep; with ``cache_dir``, its compiled code and what it
        rendered are kept there for later runs (:mod:`imageprep.catalogue.cache`)."""
        text = resources.files("imageprep.catalogue").joinpath("data", TEMPLATE_RESOURCE).read_text("utf-8")
        return cls(text, f"<built-in {TEMPLATE_RESOURCE}>", builtin=True, cache_dir=cache_dir)

    @classmethod
    def from_file(cls, path: Path) -> CatalogueTemplate:
        """An operator-supplied catalogue template."""
        try:
            return cls(path.read_text(encoding="utf-8"), str(path))
        except OSError as exc:
            raise ConfigurationError(f"{path}: cannot read catalogue template: {exc}") from exc

    @cached_property
    def _compiled(self) -> jinja2.Template:
        import jinja2  # a re-run whose renderings are all cached never needs it

        environment = jinja2.Environment(
            undefined=jinja2.StrictUndefined,
            finalize=_yaml_double_quoted,
            autoescape=False,
            keep_trailing_newline=True,
        )
        try:
            return compiled_template(environment, self.text, self._cache_dir)
        except jinja2.TemplateSyntaxError as exc:
            raise CatalogueError(f"{self.origin}:{exc.lineno}: template syntax error: {exc.message}") from exc

    def render(self, variables: Mapping[str, Any], context: str) -> list[CatalogueImage]:
        """The images the template lists for ``variables``; ``context`` names the entry in errors."""
        rendered = self._rendered_text(variables, context)
        document = parse_yaml(rendered, f"{self.origin} (rendered for {context})", trusted=self._builtin)
        return _images_from(document, self.origin)

    def _rendered_text(self, variables: Mapping[str, Any], context: str) -> str:
        """What the template renders for ``variables``: an earlier run's text when it is cached."""
        cache = self._cache_dir
        if cache is None:
            return self._render_text(variables, context)
        key = rendered_key(self.text, variables)
        cached = load_rendered(cache, key) if key is not None else None
        if cached is not None:
            return cached
        text = self._render_text(variables, context)
        if key is not None:
            store_rendered(cache, key, text)
        return text

    def _render_text(self, variables: Mapping[str, Any], context: str) -> str:
        import jinja2

        template = self._compiled
        try:
            return template.render(**variables)
        except jinja2.UndefinedError as exc:
            raise CatalogueError(
                f"{context}: the catalogue template {self.origin} uses a variable with no value: "
                f"{exc.message}",
                hint="add it to the entry's `set` or to the defaults file",
            ) from exc
        except jinja2.TemplateError as exc:
            raise CatalogueError(f"{context}: rendering {self.origin} failed: {exc}") from exc


def _images_from(document: Any, origin: str) -> list[CatalogueImage]:
    if not isinstance(document, dict) or not isinstance(document.get("images"), list):
        raise CatalogueError(f"{origin}: the rendered catalogue must be a mapping with an `images` list")
    images = []
    for position, item in enumerate(document["images"]):
        try:
            images.append(
                CatalogueImage(
                    reference=str(item["image"]),
                    source=str(item["source"]),
                    params=tuple(str(p) for p in item["params"]),
                    services=frozenset(str(s) for s in (item.get("services") or ())),
                )
            )
        except (KeyError, TypeError) as exc:
            raise CatalogueError(
                f"{origin}: image #{position + 1} lacks image, source or params ({exc})"
            ) from exc
    return images
