"""Load mapping specs from YAML, check them whole, and order them by their references.

Every problem of every spec is collected before anything is raised, and each one names the
file and the path inside the spec, e.g.
`mapping_specs/invoice.yaml: fields.CustomerRef: unknown spec 'client'`. Whatever a file
holds (bytes that are not UTF-8, YAML that does not parse, a list, keys given twice, values
of the wrong type), the loader answers with a SpecError, never another exception.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from qbo_pipeline.qbo.fields import nearest
from qbo_pipeline.specs.checks import spec_problems
from qbo_pipeline.specs.company_settings import (
    COMPANY_SETTINGS_FILE,
    CompanySetting,
    clashes,
    load_company_settings,
    reference_problems,
    spec_settings,
)
from qbo_pipeline.specs.models import EntitySpec
from qbo_pipeline.specs.paths import referenced_entity
from qbo_pipeline.specs.problems import key_problems, pydantic_problems
from qbo_pipeline.specs.reading import decode_spec_file, read_yaml

SPEC_SUFFIXES = (".yaml", ".yml")


class SpecError(ValueError):
    """One or more mapping specs are wrong; `problems` lists each one on its own."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        heading = f"{count} problem{'s' if count != 1 else ''} in the mapping specs:"
        super().__init__("\n  ".join([heading, *self.problems]))


TOP_LEVEL = "(top level)"
SPEC_KEYS = "name, qbo_entity, source, fields"


def parse_spec(data: Any, origin: str = "<spec>", file_stem: str | None = None) -> EntitySpec:
    """Build and check one spec from already-parsed YAML data; `origin` names it in errors."""
    if not isinstance(data, Mapping):
        raise SpecError([f"{origin}: {TOP_LEVEL}: {_not_a_mapping(data)}"])
    if problems := list(key_problems(data)):
        raise SpecError([f"{origin}: {shown_path(path)}: {text}" for path, text in problems])
    try:
        spec = EntitySpec.model_validate(data)
    except ValidationError as error:
        raise SpecError([f"{origin}: {shown_path(path)}: {text}"
                         for path, text in pydantic_problems(error)]) from None
    problems = spec_problems(spec, file_stem)
    if problems:
        raise SpecError([f"{origin}: {shown_path(path)}: {text}" for path, text in problems])
    return spec


def shown_path(path: str) -> str:
    """A path as a problem shows it, so that `file: path: message` reads one way whatever keys
    the YAML holds: the top level named, a key that is blank, padded or holds ': ' quoted."""
    if not path:
        return TOP_LEVEL
    if path != path.strip() or ": " in path:
        return repr(path).replace(": ", ":\\x20")
    return path


def parse_spec_text(text: str, origin: str = "<spec>",
                    file_stem: str | None = None) -> EntitySpec:
    """Build and check one spec from YAML text, as a spec file is read (keys given twice are
    refused, not silently overwritten)."""
    data, problems = read_yaml(text)
    if problems:
        raise SpecError([f"{origin}: {problem}" for problem in problems])
    return parse_spec(data, origin, file_stem)


def load_spec(path: Path) -> EntitySpec:
    """Load and check one spec file (references to other specs are checked by `load_specs`)."""
    origin = str(path)
    try:
        content = path.read_bytes()
    except OSError as error:
        reason = error.strerror or str(error)
        raise SpecError([f"{origin}: {TOP_LEVEL}: cannot read the file: {reason}"]) from None
    text, problem = decode_spec_file(content)
    if problem is not None:
        raise SpecError([f"{origin}: {problem}"])
    return parse_spec_text(text, origin, file_stem=path.stem)


def _not_a_mapping(data: Any) -> str:
    if data is None:
        return f"the spec is empty - write a mapping of keys such as {SPEC_KEYS}"
    found = "a list" if isinstance(data, list) else f"a single value ({data!r:.40})"
    return (f"a spec must be a mapping of keys such as {SPEC_KEYS}, and this is {found} - "
            "write `key: value` lines, not `- item` lines")


def load_specs(directory: Path) -> SpecSet:
    """Load every `*.yaml` spec in `directory` and check them together."""
    if not directory.is_dir():
        raise SpecError([f"{directory}: no such directory of mapping specs"])
    try:
        files = sorted(p for p in directory.iterdir()
                       if p.suffix in SPEC_SUFFIXES and p.name != COMPANY_SETTINGS_FILE)
    except OSError as error:
        raise SpecError([f"{directory}: cannot list the directory: {error.strerror}"]) from None
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
    company, settings_problems = load_company_settings(directory)
    problems.extend(settings_problems)
    problems.extend(f"{directory / line}" for line in clashes(
        company, {spec.name: spec for _, spec in located}))
    problems.extend(reference_problems(located, company))
    if problems:
        raise SpecError(problems)
    return SpecSet({spec.name: spec for _, spec in located}, company)


class SpecSet:
    """A checked set of specs, keyed by name, with the order their references impose."""

    def __init__(self, specs: Mapping[str, EntitySpec],
                 company_settings: Mapping[str, CompanySetting] | None = None) -> None:
        self._specs = dict(specs)
        self._company_settings = dict(company_settings or {})

    @property
    def settings(self) -> dict[str, CompanySetting]:
        """Every setting a company has, by key: company-wide ones, then each spec's."""
        return {**dict(sorted(self._company_settings.items())), **spec_settings(self._specs)}

    @classmethod
    def of(cls, *specs: EntitySpec) -> SpecSet:
        """Check specs built in code together, as `load_specs` checks files."""
        located = [(f"<spec {spec.name}>", spec) for spec in specs]
        problems = list(_set_problems(located, set())) + reference_problems(located, {})
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
    specs = {spec.name: spec for _, spec in located}
    for origin, spec in located:
        for path, target in spec.references().items():
            if target in specs:
                problems.extend(f"{origin}: {path}: {problem}"
                                for problem in _target_problems(spec, path, specs[target]))
            elif target not in unloadable:
                problems.append(f"{origin}: {path}: {_unknown_spec(target, sorted(origins))}")
    problems.extend(_cycle_problems(located, origins))
    return problems


def _unknown_spec(target: str, known: list[str]) -> str:
    text = f"unknown spec '{target}'"
    if near := nearest(target, known):
        text += f" - did you mean '{near}'?"
    return f"{text} (known: {', '.join(known)})"


def _target_problems(spec: EntitySpec, path: str, target: EntitySpec) -> Iterator[str]:
    """A reference field holds records of one entity: the spec it refers to must sync those."""
    expected = referenced_entity(spec, path)
    if expected is not None and expected != target.qbo_entity:
        field = path.rsplit(".", 1)[-1]
        yield (f"{field} refers to a QuickBooks {expected}, but spec '{target.name}' syncs "
               f"{target.qbo_entity} records - refer to a spec of {expected} records")
    lookup = spec.all_fields()[path].lookup
    if lookup is not None and lookup.create is not None:
        yield from _creator_problems(lookup.by, target)


def _creator_problems(by: str, target: EntitySpec) -> Iterator[str]:
    """A spec that creates looked-up records on the fly sends them to QBO, and maps the
    looked-up field from a column (the looked-up value goes there)."""
    if not target.pushes:
        yield (f"lookup.create: spec '{target.name}' only pulls, so it cannot create a "
               f"QuickBooks record - give it direction: two_way, or remove 'create'")
    mapping = target.fields.get(by)
    if mapping is None or mapping.column is None or not target.flow_of(mapping).pushes:
        yield (f"lookup.create: spec '{target.name}' must map {by} from a column that it "
               f"pushes, to create a record from the looked-up value - map {by}: "
               "{column: ...} in it")


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
