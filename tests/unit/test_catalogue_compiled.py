"""The compiled-template cache: reused across runs, never trusted blindly, never a reason to fail."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest

from imageprep.catalogue.compiled import PREFIX, SUFFIX, cache_key, compiled_template
from imageprep.catalogue.defaults import load_defaults
from imageprep.catalogue.template import CatalogueTemplate
from imageprep.catalogue.variables import template_variables
from imageprep.cli.base import cache_directory

SOURCE = "{% for n in names %}- {{ n }}\n{% endfor %}"


def _environment() -> jinja2.Environment:
    return jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)


def _cached(cache: Path) -> list[Path]:
    return sorted(cache.glob(f"{PREFIX}*{SUFFIX}"))


def test_the_second_run_uses_the_code_the_first_one_compiled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = compiled_template(_environment(), SOURCE, tmp_path)
    assert len(_cached(tmp_path)) == 1

    def no_compiling(*args: object, **kwargs: object) -> None:
        raise AssertionError("compiled again although the cache holds the code")

    environment = _environment()
    monkeypatch.setattr(environment, "compile", no_compiling)
    second = compiled_template(environment, SOURCE, tmp_path)
    assert second.render(names=["a", "b"]) == first.render(names=["a", "b"]) == "- a\n- b\n"


def test_a_damaged_cache_file_is_compiled_again_and_replaced(tmp_path: Path) -> None:
    compiled_template(_environment(), SOURCE, tmp_path)
    (cached,) = _cached(tmp_path)
    cached.write_bytes(b"\x00not marshal data")
    assert compiled_template(_environment(), SOURCE, tmp_path).render(names=["x"]) == "- x\n"
    assert cached.read_bytes() != b"\x00not marshal data"


def test_an_unusable_cache_directory_only_costs_a_compile(tmp_path: Path) -> None:
    blocked = tmp_path / "file-not-directory"
    blocked.write_text("")
    assert compiled_template(_environment(), SOURCE, blocked / "cache").render(names=["x"]) == "- x\n"


def test_another_source_or_setting_gets_another_key_and_replaces_the_stale_file(tmp_path: Path) -> None:
    environment = _environment()
    assert cache_key(environment, SOURCE) != cache_key(environment, SOURCE + " ")
    assert cache_key(environment, SOURCE) != cache_key(jinja2.Environment(), SOURCE)
    compiled_template(environment, SOURCE, tmp_path)
    compiled_template(environment, SOURCE + "end\n", tmp_path)
    assert len(_cached(tmp_path)) == 1


def test_the_catalogue_renders_the_same_from_the_cache(tmp_path: Path) -> None:
    variables = template_variables(load_defaults().template_defaults, {}, None)
    plain = CatalogueTemplate.builtin().render(variables, "test")
    assert CatalogueTemplate.builtin(tmp_path).render(variables, "test") == plain  # compiles, stores
    assert CatalogueTemplate.builtin(tmp_path).render(variables, "test") == plain  # loads
    assert len(_cached(tmp_path)) == 1


def test_a_template_syntax_error_is_reported_not_cached(tmp_path: Path) -> None:
    with pytest.raises(jinja2.TemplateSyntaxError):
        compiled_template(_environment(), "{% for %}", tmp_path)
    assert _cached(tmp_path) == []


def test_cache_directory_follows_xdg_and_ignores_a_relative_one() -> None:
    home = Path("/home/operator")
    assert cache_directory({}, home) == home / ".cache" / "imageprep"
    assert cache_directory({"XDG_CACHE_HOME": "/var/cache/me"}, home) == Path("/var/cache/me/imageprep")
    assert cache_directory({"XDG_CACHE_HOME": "relative"}, home) == home / ".cache" / "imageprep"
