"""Reading YAML files with errors an operator can act on (file, line and column).

Input files are bounded: larger than :data:`MAX_YAML_BYTES`, nested past the parser's recursion
limit, or expanding (through anchors and aliases) to more than :data:`MAX_YAML_NODES` nodes, they
are refused before anything walks them; a recursive alias is refused too. Only plain YAML types
are built (safe loading): a ``!!python/...`` tag is an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from imageprep.model.errors import ConfigurationError

MAX_YAML_BYTES = 8 * 1024 * 1024
MAX_YAML_NODES = 1_000_000
_FAST_LOADER: type[yaml.CSafeLoader] | None = getattr(yaml, "CSafeLoader", None)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_expansion(root: yaml.Node, origin: str) -> None:
    """Count nodes as if every alias were copied out (a "billion laughs" file is refused here)."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()  # on the current path: meeting one again is a cycle
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            open_nodes.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in _children(node))
            if sizes[key] > MAX_YAML_NODES:
                raise ConfigurationError(
                    f"{origin}: expands to more than {MAX_YAML_NODES} values through anchors and aliases",
                    hint="is this a YAML bomb? write the values out, or use fewer aliases",
                )
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            mark = node.start_mark
            raise ConfigurationError(f"{origin}:{mark.line + 1}:{mark.column + 1}: recursive alias")
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)


def parse_yaml(text: str, origin: str, *, trusted: bool = False) -> Any:
    """Parse ``text``; a syntax error names ``origin`` with the line and column (1-based).

    ``trusted`` text (imageprep's own data, and documents it rendered itself) is first given to
    libyaml when PyYAML has it, several times faster. Operators' files always take the pure-Python
    parser: libyaml builds nested nodes by C recursion, so a hostile nesting depth could crash the
    process instead of raising the error below. libyaml is also stricter about some escapes (a
    surrogate pair, which JSON-escaping writes for characters beyond the BMP), so anything it
    refuses goes to the pure-Python parser, which then decides.
    """
    if trusted and _FAST_LOADER is not None:
        fast = _FAST_LOADER(text)
        try:
            return fast.get_single_data()
        except (yaml.YAMLError, ValueError):
            pass
        finally:
            fast.dispose()
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node, origin)
        return loader.construct_document(node)
    except RecursionError as exc:
        raise ConfigurationError(f"{origin}: nested too deeply to be read") from exc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{origin}:{mark.line + 1}:{mark.column + 1}" if mark else origin
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigurationError(f"{where}: invalid YAML: {problem}") from exc
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{origin}: invalid YAML: {exc}") from exc
    finally:
        loader.dispose()


def load_yaml_file(path: Path) -> Any:
    """Read and parse one YAML file, turning I/O problems into configuration errors."""
    try:
        with path.open("rb") as stream:  # bounded: the file may be huge, or endless (a pipe)
            data = stream.read(MAX_YAML_BYTES + 1)
        if len(data) > MAX_YAML_BYTES:
            raise ConfigurationError(f"{path}: larger than {MAX_YAML_BYTES // (1024 * 1024)} MiB, refused")
        text = data.decode("utf-8")
    except FileNotFoundError as exc:
        raise ConfigurationError(f"{path}: no such file") from exc
    except IsADirectoryError as exc:
        raise ConfigurationError(f"{path}: is a directory, expected a YAML file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{path}: cannot read: {exc}") from exc
    return parse_yaml(text, str(path))
