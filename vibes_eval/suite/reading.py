"""Reading a suite's YAML: yaml.SafeLoader, stricter, and bounded.

- duplicate keys are errors, and only true/false are booleans (YAML 1.1 reads the answers
  `yes`, `no`, `on`, `off` as booleans);
- the document is composed first and its size counted with every alias expanded at each use,
  so an alias bomb (a few hundred bytes that expand to billions of values) is refused before
  anything is built or formatted into an error message.
"""

from __future__ import annotations

import re

import yaml

from vibes_eval.errors import YamlTooLarge
from vibes_eval.limits import MAX_YAML_NODES

__all__ = ["YamlTooLarge", "load_yaml"]


class _StrictLoader(yaml.SafeLoader):
    """yaml.SafeLoader with two suite-friendly changes: duplicate keys are errors, and only
    true/false are booleans (YAML 1.1 reads the answers `yes`, `no`, `on`, `off` as booleans)."""

    def construct_mapping(self, node, deep=False):
        keys = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in keys:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            keys.add(key)
        return super().construct_mapping(node, deep=deep)


_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _expanded_size(root) -> int:
    """Nodes the YAML graph holds with every alias counted at each use (an alias bomb: billions); stops past the cap."""
    memo: dict[int, int] = {}
    busy: set[int] = set()

    def size(node) -> int:
        key = id(node)
        if key in memo:
            return memo[key]
        if key in busy:
            raise YamlTooLarge("a recursive alias")
        busy.add(key)
        total = 1
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                total += size(k) + size(v)
                if total > MAX_YAML_NODES:
                    break
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                total += size(item)
                if total > MAX_YAML_NODES:
                    break
        busy.discard(key)
        memo[key] = total
        return total

    return size(root)


def load_yaml(data: bytes):
    """The document, composed first so its expanded size is known before anything is built."""
    loader = _StrictLoader(data)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node) > MAX_YAML_NODES:
            raise YamlTooLarge(f"the document expands to more than {MAX_YAML_NODES:,} values (aliases used as a bomb?)")
        return loader.construct_document(node)
    finally:
        loader.dispose()
