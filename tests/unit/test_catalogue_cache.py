"""The catalogue caches: reused across runs, never trusted blindly, never a reason to fail."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest

from imageprep.catalogue.cache import (
    COMPILED_PREFIX,
    COMPILED_SUFFIX,
    RENDERED_KEPT,
    RENDERED_PREFIX,
    cache_key,
    compiled_template,
    load_rendered,
    rendered_key,
    store_rendered,
)
from imageprep.catalogue.defaults import load_defaults
from imageprep.catalogue.template import CatalogueTemplate
from imageprep.catalogue.variables import template_variables
from imageprep.settings import cache_directory
from tests.support.freshpython import run_python

SOURCE = "{% for n in names %}- {{ n }}\n{% endfor %}"


def _environment() -> jinja2.Environment:
    return jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)


def _cached(cache: Path) -> list[Path]:
    return sorted(cache.glob(f"{COMPILED_PREFIX}*{COMPILED_SUFFIX}"))


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


def test_the_catalogue_renders_the_same_from_the_caches(tmp_path: Path) -> None:
    variables = template_variables(load_defaults().template_defaults, {}, None)
    plain = CatalogueTemplate.builtin().render(variables, "test")
    assert CatalogueTemplate.builtin(tmp_path).render(variables, "test") == plain  # compiles, renders
    assert CatalogueTemplate.builtin(tmp_path).render(variables, "test") == plain  # rendered text
    (rendered,) = tmp_path.glob(f"{RENDERED_PREFIX}*")
    rendered.unlink()
    assert CatalogueTemplate.builtin(tmp_path).render(variables, "test") == plain  # compiled code
    assert len(_cached(tmp_path)) == 1


def test_a_cached_rendering_is_used_without_importing_jinja2(tmp_path: Path) -> None:
    probe = (
        "import sys\n"
        "from pathlib import Path\n"
        "from imageprep.catalogue.defaults import load_defaults\n"
        "from imageprep.catalogue.template import CatalogueTemplate\n"
        "from imageprep.catalogue.variables import template_variables\n"
        "variables = template_variables(load_defaults().template_defaults, {}, None)\n"
        "images = CatalogueTemplate.builtin(Path(sys.argv[1])).render(variables, 'test')\n"
        "print(len(images), 'jinja2' in sys.modules)\n"
    )
    runs = [run_python(probe, str(tmp_path)).split() for _ in range(2)]
    assert runs[0][1] == "True" and runs[1] == [runs[0][0], "False"]


def test_each_set_of_variables_has_its_own_rendering(tmp_path: Path) -> None:
    defaults = load_defaults().template_defaults
    template = CatalogueTemplate.builtin(tmp_path)
    master = template.render(template_variables(defaults, {}, None), "test")
    local = template.render(template_variables(defaults, {"namespace": "127.0.0.1:5000/local"}, None), "test")
    assert master != local
    moved = [image.reference for image in local if image.reference.startswith("127.0.0.1:5000/local/")]
    assert len(moved) == sum(image.reference.startswith("docker.io/tripleomaster/") for image in master) > 0
    assert (
        CatalogueTemplate.builtin(tmp_path).render(template_variables(defaults, {}, None), "test") == master
    )


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"tag": 1}, {"tag": "1"}),
        ({"tag": 1}, {"tag": True}),
        ({"tag": 1}, {"tag": 1.0}),
        ({"x": {"1": "a"}}, {"x": {"2": "a"}}),
        ({"x": [1, 2]}, {"x": [2, 1]}),
        ({"x": None}, {}),
    ],
)
def test_different_variables_never_share_a_key(first: dict[str, object], second: dict[str, object]) -> None:
    assert rendered_key(SOURCE, first) != rendered_key(SOURCE, second)
    assert rendered_key(SOURCE, first) == rendered_key(SOURCE, dict(first))


def test_mappings_in_another_order_are_other_variables() -> None:
    # A template looping over a mapping renders it in its order.
    assert rendered_key(SOURCE, {"x": {"a": 1, "b": 2}}) != rendered_key(SOURCE, {"x": {"b": 2, "a": 1}})


def test_variables_json_cannot_hold_exactly_are_not_cached() -> None:
    import datetime

    assert rendered_key(SOURCE, {"tag": datetime.date(2026, 12, 1)}) is None
    assert rendered_key(SOURCE, {"x": {1: "int key"}}) is None


def test_only_the_most_recently_used_renderings_are_kept(tmp_path: Path) -> None:
    for number in range(RENDERED_KEPT + 5):
        store_rendered(tmp_path, f"key{number}", f"text {number}")
    assert len(list(tmp_path.glob(f"{RENDERED_PREFIX}*"))) == RENDERED_KEPT
    assert load_rendered(tmp_path, f"key{RENDERED_KEPT + 4}") == f"text {RENDERED_KEPT + 4}"
    assert load_rendered(tmp_path, "key0") is None


def test_a_linked_cache_file_is_not_followed(tmp_path: Path) -> None:
    store_rendered(tmp_path, "key", "text")
    (target,) = tmp_path.glob(f"{RENDERED_PREFIX}*")
    elsewhere = tmp_path / "elsewhere"
    target.rename(elsewhere)
    target.symlink_to(elsewhere)
    assert load_rendered(tmp_path, "key") is None


def test_nothing_is_written_into_a_directory_others_can_write(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o700)
    shared.chmod(0o777)
    store_rendered(shared, "key", "text")
    compiled_template(_environment(), SOURCE, shared)
    assert list(shared.iterdir()) == []


def test_a_read_only_cache_still_serves_what_it_has(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store_rendered(tmp_path, "key", "text")

    def refused(*args: object, **kwargs: object) -> None:
        raise PermissionError("read-only file system")

    monkeypatch.setattr("imageprep.catalogue.cache.os.utime", refused)
    assert load_rendered(tmp_path, "key") == "text"


def test_a_cache_others_could_write_is_not_used(tmp_path: Path) -> None:
    store_rendered(tmp_path, "key", "text")
    compiled_template(_environment(), SOURCE, tmp_path)
    tmp_path.chmod(0o777)
    try:
        assert load_rendered(tmp_path, "key") is None
        environment = _environment()
        compiled_template(environment, SOURCE, tmp_path)  # compiles: the stored code is not trusted
    finally:
        tmp_path.chmod(0o700)
    assert load_rendered(tmp_path, "key") == "text"


def test_a_template_syntax_error_is_reported_not_cached(tmp_path: Path) -> None:
    with pytest.raises(jinja2.TemplateSyntaxError):
        compiled_template(_environment(), "{% for %}", tmp_path)
    assert _cached(tmp_path) == []


def test_cache_directory_follows_xdg_and_ignores_a_relative_one() -> None:
    home = Path("/home/operator")
    assert cache_directory({}, home) == home / ".cache" / "imageprep"
    assert cache_directory({"XDG_CACHE_HOME": "/var/cache/me"}, home) == Path("/var/cache/me/imageprep")
    assert cache_directory({"XDG_CACHE_HOME": "relative"}, home) == home / ".cache" / "imageprep"
