"""Load mapping specs from YAML, check them whole, and order them by their references.

Every problem of every spec is collected before anything is raised, and each one names the
file and the path inside the spec, e.g.
`mapping_specs/invoice.yaml: fields.CustomerRef: unknown spec 'client'`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from qbo_pipeline.specs.checks import spec_problems
from qbo_pipeline.specs.models import EntitySpec

SPEC_SUFFIXES = (".yaml", ".yml")


class SpecError(ValueError):
    """One or more mapping specs are wrong; `problems` lists each one on its own."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        heading = f"{count} problem{'s' if count != 1 else ''} in the mapping specs:"
        super().__init__("\n  ".join([heading, *self.problems]))


def parse_spec(data: Any, origin: str = "<spec>", file_stem: str | None = None) -> EntitySpec:
    """Build and check one spec from already-parsed YAML data; `origin` names it in errors."""
    if not isinstance(data, Mapping):
        raise SpecError([f"{origin}: a spec must be a mapping of keys such as name, source"])
    try:
        spec = EntitySpec.model_validate(data)
    except ValidationError as error:
        raise SpecError([f"{origin}: {path}: {text}"
                         for path, text in _pydantic_problems(error)]) from None
    problems = spec_problems(spec, file_stem)
    if problems:
        raise SpecError([f"{origin}: {path}: {text}" for path, text in problems])
    return spec


def load_spec(path: Path) -> EntitySpec:
    """Load and check one spec file (references to other specs are checked by `load_specs`)."""
    origin = str(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise SpecError([f"{origin}: cannot read the file: {error.strerror}"]) from None
    except yaml.YAMLError as error:
        raise SpecError([f"{origin}: not valid YAML: {_yaml_problem(error)}"]) from None
    return parse_spec(data, origin, file_stem=path.stem)


def load_specs(directory: Path) -> SpecSet:
    """Load every `*.yaml` spec in `directory` and check them together."""
    if not directory.is_dir():
        raise SpecError([f"{directory}: no such directory of mapping specs"])
    files = sorted(p for p in directory.iterdir() if p.suffix in SPEC_SUFFIXES)
    if not files:
        raise SpecError([f"{directory}: no mapping specs (*.yaml) found"])
    problems: list[str] = []
    located: list[tuple[str, EntitySpec]] = []
    unloadable: set[str] = set()
    for path in files:
        try:
            located.append((str(path), load_spec(path)))
        except SpecError as error:
            problems.extend(error.problems)
            unloadable.add(path.stem)
    problems.extend(_set_problems(located, unloadable))
    if problems:
        raise SpecError(problems)
    return SpecSet({spec.name: spec for _, spec in located})


class SpecSet:
    """A checked set of specs, keyed by name, with the order their references impose."""

    def __init__(self, specs: Mapping[str, EntitySpec]) -> None:
        self._specs = dict(specs)

    @classmethod
    def of(cls, *specs: EntitySpec) -> SpecSet:
        """Check specs built in code together, as `load_specs` checks files."""
        located = [(f"<spec {spec.name}>", spec) for spec in specs]
        problems = list(_set_problems(located, set()))
        if problems:
            raise SpecError(problems)
        return cls({spec.name: spec for spec in specs})

    def __getitem__(self, name: str) -> EntitySpec:
        return self._specs[name]

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[EntitySpec]:
        return iter(self._specs[name] for name in sorted(self._specs))

    def __len__(self) -> int:
        return len(self._specs)

    @property
    def names(self) -> list[str]:
        return sorted(self._specs)

    def upstream_of(self, name: str) -> list[str]:
        """The specs whose QBO records `name` refers to (its customers, its employees...)."""
        return sorted(set(self._specs[name].references().values()))

    def in_dependency_order(self) -> list[EntitySpec]:
        """Specs ordered so that each comes after every spec it refers to."""
        pending = {name: set(self.upstream_of(name)) for name in self._specs}
        ordered: list[EntitySpec] = []
        while pending:
            ready = sorted(name for name, upstream in pending.items() if not upstream)
            if not ready:
                raise SpecError([f"reference cycle among specs {', '.join(sorted(pending))}"])
            for name in ready:
                ordered.append(self._specs[name])
                del pending[name]
            for upstream in pending.values():
                upstream.difference_update(ready)
        return ordered


def _set_problems(located: Sequence[tuple[str, EntitySpec]], unloadable: set[str]) -> list[str]:
    origins: dict[str, str] = {}
    problems = []
    for origin, spec in located:
        if spec.name in origins:
            problems.append(f"{origin}: name: '{spec.name}' is already the name of "
                            f"{origins[spec.name]}")
        origins.setdefault(spec.name, origin)
    for origin, spec in located:
        for path, target in spec.references().items():
            if target not in origins and target not in unloadable:
                known = ", ".join(sorted(origins))
                problems.append(f"{origin}: {path}: unknown spec '{target}' (known: {known})")
    problems.extend(_cycle_problems(located, origins))
    return problems


def _cycle_problems(located: Sequence[tuple[str, EntitySpec]],
                    origins: Mapping[str, str]) -> list[str]:
    specs = {spec.name: spec for _, spec in located}
    graph = {name: [t for t in spec.references().values() if t in specs]
             for name, spec in specs.items()}
    problems = []
    reported: set[frozenset[str]] = set()
    for cycle in _cycles(graph):
        if frozenset(cycle) in reported:
            continue
        reported.add(frozenset(cycle))
        first, second = cycle[0], cycle[1]
        path = next(p for p, t in specs[first].references().items() if t == second)
        problems.append(f"{origins[first]}: {path}: reference cycle {' -> '.join(cycle)}; "
                        "a spec cannot depend on itself through its references")
    return problems


def _cycles(graph: Mapping[str, list[str]]) -> Iterator[list[str]]:
    """Each cycle found by a depth-first walk, as `[a, b, a]`."""
    for start in sorted(graph):
        stack = [(start, [start])]
        while stack:
            node, trail = stack.pop()
            for target in sorted(set(graph[node])):
                if target == start:
                    yield [*trail, start]
                elif target not in trail and target > start:
                    stack.append((target, [*trail, target]))


def _pydantic_problems(error: ValidationError) -> Iterator[tuple[str, str]]:
    for item in error.errors():
        path = _location(item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "missing":
            message = "is required"
        elif item["type"] == "extra_forbidden":
            message = "unknown key: check its spelling against mapping_specs/README.md"
        yield path or "(top level)", message


def _location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part in ("str", "list[str]"):
            continue  # pydantic names the union member it tried; the reader needs the key
        else:
            text += f".{part}" if text else str(part)
    return text


def _yaml_problem(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    if mark is None:
        return problem
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
