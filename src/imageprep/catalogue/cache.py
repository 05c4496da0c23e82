"""What the catalogue template produced in earlier runs, kept on disk like Python's ``__pycache__``.

Two things are kept, each under a key made of everything it depends on, so a stale or damaged
file just means doing the work again and nothing here ever fails a run (a cache directory that
cannot be read or written is ignored):

- the compiled code of a template (compiling the catalogue takes about 25 ms; rendering it, 0.3);
- the text a template rendered for one set of variables. A re-run of the same environment then
  neither imports Jinja2 (15 ms) nor renders: that is most of what a re-run costs before it
  starts talking to registries.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import json
import marshal
import os
import sys
import tempfile
import types
from collections.abc import Mapping
from pathlib import Path
from stat import S_ISDIR, S_ISREG
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jinja2

COMPILED_PREFIX = "catalogue-"
COMPILED_SUFFIX = ".code"
RENDERED_PREFIX = "rendered-"
RENDERED_SUFFIX = ".yaml"
# Rendered texts kept: one per entry of each environment recently prepared is plenty.
RENDERED_KEPT = 32


def _digest(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()[:40]


def cache_key(environment: jinja2.Environment, text: str) -> str:
    """What compiled code depends on: the source, how the environment compiles, the versions."""
    import jinja2

    settings = repr(
        (
            environment.autoescape,
            environment.keep_trailing_newline,
            getattr(environment.finalize, "__qualname__", None),
            getattr(environment.undefined, "__qualname__", None),
            environment.trim_blocks,
            environment.lstrip_blocks,
        )
    )
    return _digest(
        text.encode("utf-8"),
        settings.encode(),
        jinja2.__version__.encode(),
        importlib.util.MAGIC_NUMBER,
        _renderer_stamp(),  # the environment's other options are set in imageprep's own code
    )


def compiled_template(environment: jinja2.Environment, text: str, cache_dir: Path | None) -> jinja2.Template:
    """``environment.from_string(text)``, reusing the code compiled by an earlier run when it can.

    Raises what compiling raises (``jinja2.TemplateSyntaxError``).
    """
    if cache_dir is None:
        return environment.from_string(text)
    path = cache_dir / f"{COMPILED_PREFIX}{cache_key(environment, text)}{COMPILED_SUFFIX}"
    code = _load_code(path)
    if code is None:
        code = environment.compile(text)
        _store(path, marshal.dumps(code), COMPILED_PREFIX, keep=1)
    return environment.template_class.from_code(environment, code, environment.make_globals(None))


def _ours(stat: os.stat_result) -> bool:
    return stat.st_uid == os.geteuid() and not stat.st_mode & 0o022


def _private_directory(directory: Path) -> bool:
    """Whether ``directory`` is a real directory (not a link) of ours that nobody else can write."""
    try:
        stat = os.lstat(directory)
    except OSError:
        return False
    return S_ISDIR(stat.st_mode) and _ours(stat)


def _read_private(path: Path) -> bytes | None:
    """The file's bytes, if it and its directory are ours and writable by nobody else.

    Compiled code is run and rendered text decides where images come from: a file another user
    could have written is not used (Jinja2's own bytecode cache makes the same check). The file is
    checked on the descriptor it is read from, and a symbolic link is not followed.
    """
    if not _private_directory(path.parent):
        return None
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(descriptor, "rb") as handle:
        try:
            stat = os.fstat(handle.fileno())
            return handle.read() if S_ISREG(stat.st_mode) and _ours(stat) else None
        except OSError:
            return None


def _load_code(path: Path) -> types.CodeType | None:
    data = _read_private(path)
    if data is None:
        return None
    try:
        code = marshal.loads(data)
    except (EOFError, ValueError, TypeError):
        return None
    return code if isinstance(code, types.CodeType) else None


def _file_stamp(origin: str | None) -> str:
    """A file's location, modification time and size: changes whenever it is reinstalled or edited."""
    if origin is None:
        return "none"
    try:
        stat = os.stat(origin)
    except OSError:
        return f"{origin}: missing"
    return f"{origin}\0{stat.st_mtime_ns}\0{stat.st_size}"


@functools.cache
def _renderer_stamp() -> bytes:
    """Which code renders: the installed Jinja2 (found without importing it) and imageprep's own
    rendering code (the template's environment and escaping, this module)."""
    module = sys.modules.get("jinja2")
    jinja2_origin = getattr(module, "__file__", None) if module is not None else None
    if jinja2_origin is None:
        spec = importlib.util.find_spec("jinja2")
        jinja2_origin = spec.origin if spec is not None else None
    ours = Path(__file__).with_name("template.py")
    stamps = (_file_stamp(jinja2_origin), _file_stamp(str(ours)), _file_stamp(__file__))
    return "\0\0".join(stamps).encode()


def _canonical(value: Any) -> Any:
    """``value`` as JSON can hold it without losing a distinction; raises TypeError otherwise."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, list):
        return [_canonical(item) for item in value]
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return {key: _canonical(item) for key, item in value.items()}
    raise TypeError(f"{type(value).__name__} values are not cached")


def rendered_key(text: str, variables: Mapping[str, Any]) -> str | None:
    """The key of what ``text`` renders with ``variables``; ``None`` when they cannot be keyed.

    Variables are operators' YAML values; only JSON's kinds (str, int, float, bool, null, lists,
    string-keyed mappings) are keyed, so that two different sets can never share a key. Mappings
    keep their order (a template looping over one renders in that order).
    """
    try:
        canonical = json.dumps(_canonical(dict(variables)), allow_nan=True)
    except (TypeError, ValueError):
        return None
    return _digest(text.encode("utf-8"), canonical.encode("utf-8"), _renderer_stamp())


def load_rendered(cache_dir: Path, key: str) -> str | None:
    """The text stored under ``key``, marked as recently used; ``None`` when there is none."""
    path = cache_dir / f"{RENDERED_PREFIX}{key}{RENDERED_SUFFIX}"
    data = _read_private(path)
    if data is None:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    with contextlib.suppress(OSError):  # a read-only cache still serves what it has
        os.utime(path)
    return text


def store_rendered(cache_dir: Path, key: str, text: str) -> None:
    """Keep ``text`` under ``key`` (and only the most recently used :data:`RENDERED_KEPT` texts)."""
    _store(
        cache_dir / f"{RENDERED_PREFIX}{key}{RENDERED_SUFFIX}",
        text.encode("utf-8"),
        RENDERED_PREFIX,
        RENDERED_KEPT,
    )


def _store(path: Path, data: bytes, prefix: str, keep: int) -> None:
    """Write atomically (a concurrent run reads the old file or the new one), then prune to ``keep``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not _private_directory(path.parent):
            return  # another user's directory (or a link to one): neither write nor prune there
        descriptor, staging = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
            os.replace(staging, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(staging)
            raise
        _prune(path, prefix, keep)
    except OSError:
        return


def _prune(kept: Path, prefix: str, keep: int) -> None:
    """Remove all but the ``keep`` most recently used files of this kind (``kept`` always stays)."""
    others = []
    for candidate in kept.parent.glob(f"{prefix}*"):
        if candidate == kept:
            continue
        with contextlib.suppress(OSError):
            others.append((candidate.stat().st_mtime_ns, candidate))
    others.sort(reverse=True)
    for _, stale in others[max(0, keep - 1) :]:
        with contextlib.suppress(OSError):
            stale.unlink()
