"""Reading a spec file: its bytes as UTF-8 text, the text as one YAML document.

PyYAML keeps the last of two equal keys without a word, so a second `DisplayName:` under
`fields` would silently replace the first: the document's nodes are checked for repeated keys
before they become Python data. Each problem comes back as `where: what - how to fix`, for
the loader to put after the file name.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MERGE_TAG = "tag:yaml.org,2002:merge"
UTF16_MARKS = (b"\xff\xfe", b"\xfe\xff")
# Clues found in the messages of both PyYAML's parsers (pure Python and libyaml), and the fix.
_HINTS = {
    "mapping values are not allowed": "quote a value that holds ': ', or check the indentation",
    "could not find expected ':'": "check the indentation of this line and the one before",
    "expected <block end>": "check the indentation: the keys of one mapping start in one column",
    "did not find expected key": "check the indentation: the keys of one mapping start in one "
                                 "column",
    "expected a single document": "a spec file holds one spec: remove the '---' line",
    "found undefined alias": "quote a value that starts with '*'",
    "expected ',' or '}'": "quote a value that holds braces, e.g. template: \"{number} - {name}\"",
    "expected ',' or ']'": "close the list with ], or quote a value that holds brackets",
    "found unexpected end of stream": "a quoted value is never closed - close its quote",
}
# The character a "cannot start any token" error points at, and the fix.
_CHARACTER_HINTS = {
    "\t": "indent with spaces: YAML does not allow tabs",
    "@": "quote a value that starts with '@' or '`'",
    "`": "quote a value that starts with '@' or '`'",
}
# libyaml, when installed, parses ten times faster than PyYAML's pure-Python parser.
_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _SpecLoader(_BaseLoader):  # type: ignore[valid-type,misc]
    """PyYAML's safe loader, where a scalar that cannot be built (`2024-02-30`, `!!int x`)
    is a YAML error at its own line rather than a bare ValueError."""

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, TypeError, OverflowError) as error:
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read {node.value!r:.60}: {error} - quote it to keep it "
                "as text", node.start_mark) from None


def decode_spec_file(content: bytes) -> tuple[str, str | None]:
    """The file's text (a UTF-8 byte order mark dropped), or the problem saying why not."""
    try:
        return content.decode("utf-8-sig"), None
    except UnicodeDecodeError as error:
        line_start = content.rfind(b"\n", 0, error.start) + 1
        line = content.count(b"\n", 0, error.start) + 1
        column = len(content[line_start:error.start].decode("utf-8", "replace")) + 1
        hint = (" (it looks like UTF-16, as some Windows editors save)"
                if content[:2] in UTF16_MARKS else "")
        return "", (f"not UTF-8 text: line {line}, column {column}: byte "
                    f"0x{content[error.start]:02x} cannot be read as UTF-8{hint} - save the "
                    "file as UTF-8")


def read_yaml(text: str) -> tuple[Any, list[str]]:
    """The one YAML document in `text`, or the problems that keep it from being read."""
    try:
        return _document(text)
    except yaml.YAMLError as error:
        return None, [f"not valid YAML: {_yaml_problem(error, text)}"]
    except RecursionError:
        return None, ["not valid YAML: it is nested too deeply to read - a spec is a few "
                      "levels deep"]


def _document(text: str) -> tuple[Any, list[str]]:
    loader = _SpecLoader(text)  # refuses characters YAML does not allow at once
    try:
        node = loader.get_single_node()
        if node is None:
            return None, []
        if duplicates := list(_duplicate_keys(node, "", set())):
            return None, duplicates
        return loader.construct_document(node), []
    finally:
        loader.dispose()


def _duplicate_keys(node: Node, path: str, seen: set[int]) -> Iterator[str]:
    if id(node) in seen:  # an alias of a node already walked (it may even contain itself)
        return
    seen.add(id(node))
    if isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            yield from _duplicate_keys(item, f"{path}[{index}]", seen)
    elif isinstance(node, MappingNode):
        first_lines: dict[tuple[str, str], int] = {}
        for key, value in node.value:
            if not isinstance(key, ScalarNode) or key.tag == MERGE_TAG:
                continue  # `<<` merges are meant to be overridden; complex keys fail later
            where = f"{path}.{key.value}" if path else str(key.value)
            line = key.start_mark.line + 1
            if (first := first_lines.get((key.tag, key.value))) is None:
                first_lines[(key.tag, key.value)] = line
            else:
                yield (f"{where}: '{key.value}' is given twice (line {first}, then line "
                       f"{line}); YAML would silently keep only the last one - remove or "
                       "merge one")
            yield from _duplicate_keys(value, where, seen)


def _yaml_problem(error: yaml.YAMLError, text: str) -> str:
    if isinstance(error, yaml.reader.ReaderError):
        line, column = _line_and_column(text, error.position)
        return (f"line {line}, column {column}: the character U+{error.character:04X} is not "
                "allowed in YAML - remove it") if isinstance(error.character, int) else str(error)
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    context = getattr(error, "context", None)
    if context and problem.startswith("but "):  # "expected a single document ... but found"
        problem = f"{context}, {problem}"
    hint = next((fix for clue, fix in _HINTS.items() if clue in problem), None)
    if mark is None:
        return f"{problem} - {hint}" if hint else problem
    if "cannot start any token" in problem:
        hint = _CHARACTER_HINTS.get(text[mark.index:mark.index + 1], hint)
    where = f"line {mark.line + 1}, column {mark.column + 1}"
    return f"{where}: {problem} - {hint}" if hint else f"{where}: {problem}"


def _line_and_column(text: str, offset: int) -> tuple[int, int]:
    before = text[:offset]
    return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1
