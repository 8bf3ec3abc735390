"""YAML that remembers where things were, so a broken pack names its file and line.

``load_yaml`` returns plain dicts and lists of subclasses that carry the 1-based line of the
mapping/sequence itself and of every key, and refuses duplicate keys (PyYAML silently keeps the
last one, which would hide an official's mistake).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from fugong.policies.engine.errors import PackError


class YMap(dict[str, Any]):
    """A mapping with ``line`` (of the mapping) and ``key_lines`` (of each key)."""

    def __init__(self, line: int = 0, path: str = "") -> None:
        super().__init__()
        self.line = line
        self.path = path
        self.key_lines: dict[str, int] = {}

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


class YList(list[Any]):
    """A sequence with ``line`` and ``item_lines`` (of each item)."""

    def __init__(self, items: list[Any] | None = None, line: int = 0, path: str = "") -> None:
        super().__init__(items or [])
        self.line = line
        self.path = path
        self.item_lines: list[int] = [line] * len(self)


class _Loader(yaml.SafeLoader):
    pass


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> YMap:
    out = YMap(node.start_mark.line + 1, str(node.start_mark.name))
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if not isinstance(key, str):
            # Dates and numbers are legal YAML keys but never legal names in a pack.
            raise PackError(out.path, line, f"keys must be text, got {key!r}")
        if key in out:
            raise PackError(
                out.path, line, f"duplicate key {key!r} (first at line {out.key_lines[key]})"
            )
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = line
    return out


def _construct_seq(loader: _Loader, node: yaml.SequenceNode) -> YList:
    items = [loader.construct_object(child, deep=True) for child in node.value]
    out = YList(items, node.start_mark.line + 1, str(node.start_mark.name))
    out.item_lines = [child.start_mark.line + 1 for child in node.value]
    return out


def _construct_timestamp(loader: _Loader, node: yaml.ScalarNode) -> Any:
    # PyYAML raises a bare ValueError (no line) for 2020-02-31; say where it is instead.
    try:
        return loader.construct_yaml_timestamp(node)
    except ValueError:
        raise PackError(
            str(node.start_mark.name),
            node.start_mark.line + 1,
            f"{node.value!r} is not a real date",
        ) from None


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_seq)


def load_yaml(path: Path) -> Any:
    """Parse ``path``; a syntax error becomes a PackError naming the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PackError(str(path), 0, f"cannot read: {exc}") from None
    try:
        loader = _Loader(text)
        loader.name = str(path)
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        raise PackError(str(path), line, f"not valid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise PackError(str(path), 0, f"not valid YAML: {exc}") from None
