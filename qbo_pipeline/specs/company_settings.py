"""The per-company settings a connected company can change: declared once, in
`mapping_specs/company_settings.yaml` and by the specs themselves, each with its default.

Three kinds of setting, each named by a key:
- `<spec>.enabled` (every spec): whether the company syncs that entity at all;
- `<spec>.<name>` (every spec's `settings:`): its row filters, such as `time_entry.approved_only`;
- the company-wide ones of `company_settings.yaml`, such as `sync_mode`.
Values are checked when set (`sync.settings`); this module only says what exists.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import ValidationError, model_validator

from qbo_pipeline.specs.models import (
    SPEC_NAME,
    EntitySpec,
    SettingChoices,
    SettingSwitch,
    SettingTemplate,
    SpecModel,
)
from qbo_pipeline.specs.problems import key_problems, pydantic_problems
from qbo_pipeline.specs.reading import decode_spec_file, read_yaml

COMPANY_SETTINGS_FILE = "company_settings.yaml"
ENABLED = "enabled"


class SettingKind(StrEnum):
    BOOLEAN = "boolean"
    CHOICE = "choice"
    TEXT = "text"  # a name the company types, such as its income account's


# What a text setting may hold: a QuickBooks name is at most 100 characters.
TEXT_SETTING_MAX_LENGTH = 100


class CompanySetting(SpecModel):
    """One setting: what it does (for a person), its kind, its choices and its default."""

    description: str
    kind: SettingKind
    choices: tuple[str, ...] = ()
    default: bool | str
    # A text setting that may be left empty: empty means "none", and what reads the setting
    # falls back on QuickBooks' own default (a lookup it defaults is left out).
    optional: bool = False

    @model_validator(mode="after")
    def _default_fits(self) -> CompanySetting:
        if self.optional and self.kind is not SettingKind.TEXT:
            raise ValueError("only a text setting can be optional")
        if self.kind is SettingKind.BOOLEAN:
            if self.choices or not isinstance(self.default, bool):
                raise ValueError("a boolean setting has no choices and a default of true or "
                                 "false")
        elif self.kind is SettingKind.TEXT:
            if self.choices or not isinstance(self.default, str) or (
                    not self.optional and not self.default.strip()):
                raise ValueError("a text setting has no choices and a default text (an empty "
                                 "default needs optional: true)")
        elif not self.choices or self.default not in self.choices:
            raise ValueError("a choice setting lists its choices and its default is one of them")
        return self

    @property
    def template_choices(self) -> tuple[str, ...]:
        """What a template chosen by this setting is keyed by: a choice setting's choices, a
        boolean's "true" and "false" (none for a text)."""
        if self.kind is SettingKind.BOOLEAN:
            return BOOLEAN_CHOICES
        return self.choices


# The keys of a template chosen by a boolean setting (quoted in YAML, where a bare true is
# no text).
BOOLEAN_CHOICES = ("true", "false")


def choice_key(value: Any) -> str:
    """The template key a setting's value picks: "true"/"false" for a boolean."""
    if isinstance(value, bool):
        return BOOLEAN_CHOICES[0] if value else BOOLEAN_CHOICES[1]
    return str(value)


def load_company_settings(directory: Path) -> tuple[dict[str, CompanySetting], list[str]]:
    """The company-wide settings of `directory`'s settings file (none without one), and the
    problems found, each naming the file and the setting."""
    path = directory / COMPANY_SETTINGS_FILE
    if not path.is_file():
        return {}, []
    origin = str(path)
    text, problem = decode_spec_file(path.read_bytes())
    if problem is not None:
        return {}, [f"{origin}: {problem}"]
    data, yaml_problems = read_yaml(text)
    if yaml_problems:
        return {}, [f"{origin}: {problem}" for problem in yaml_problems]
    if not isinstance(data, Mapping):
        return {}, [f"{origin}: (top level): write one `name:` mapping per setting"]
    if found := list(key_problems(data)):
        return {}, [f"{origin}: {path_}: {text_}" for path_, text_ in found]
    settings: dict[str, CompanySetting] = {}
    problems = []
    for name, body in data.items():
        if not SPEC_NAME.match(str(name)):
            problems.append(f"{origin}: {name}: a setting's name is snake_case")
            continue
        try:
            settings[str(name)] = CompanySetting.model_validate(body)
        except ValidationError as error:
            problems.extend(f"{origin}: {name}{'.' + where if where else ''}: {what}"
                            for where, what in pydantic_problems(error))
    return settings, problems


def spec_settings(specs: Mapping[str, EntitySpec]) -> dict[str, CompanySetting]:
    """The settings every spec brings: on or off, and its row filters."""
    found: dict[str, CompanySetting] = {}
    for name, spec in sorted(specs.items()):
        found[f"{name}.{ENABLED}"] = CompanySetting(
            description=f"Sync {name} ({spec.qbo_entity}) for this company.",
            kind=SettingKind.BOOLEAN, default=True)
        for setting_name, setting in spec.settings.items():
            found[f"{name}.{setting_name}"] = CompanySetting(
                description=setting.description, kind=SettingKind.BOOLEAN,
                default=setting.default)
    return found


def clashes(company: Mapping[str, Any], specs: Mapping[str, EntitySpec]) -> list[str]:
    """Company-wide settings named like a spec (their keys would read as the spec's)."""
    return [f"{COMPANY_SETTINGS_FILE}: {name}: is the name of a spec; name the setting "
            "otherwise" for name in company if name in specs]


def reference_problems(located: Sequence[tuple[str, EntitySpec]],
                       company: Mapping[str, CompanySetting]) -> list[str]:
    """Templates chosen by a setting: the setting is a company-wide choice, and each of its
    choices has a template (and nothing else does)."""
    problems = []
    for origin, spec in located:
        for path, template in spec.chosen_templates.items():
            where = f"{origin}: fields.{path}.template"
            setting = company.get(template.setting)
            if setting is None or setting.kind is SettingKind.TEXT:
                known = [name for name, s in company.items() if s.kind is not SettingKind.TEXT]
                problems.append(f"{where}: {template.setting!r} is not a choice or boolean "
                                f"setting of {COMPANY_SETTINGS_FILE} (its choice and boolean "
                                f"settings: {', '.join(known) or 'none'})")
                continue
            choices = setting.template_choices
            missing = [c for c in choices if c not in template.choices]
            extra = [c for c in template.choices if c not in choices]
            if missing or extra:
                problems.append(f"{where}: give one template per choice of {template.setting} "
                                f"({', '.join(map(repr, choices))})"
                                + (f"; missing {', '.join(map(repr, missing))}" if missing
                                   else "")
                                + (f"; not a choice {', '.join(map(repr, extra))}" if extra
                                   else ""))
        problems.extend(_lookup_default_problems(origin, spec, company))
        if isinstance(spec.uppercase, SettingSwitch):
            problems.extend(_switch_problems(f"{origin}: uppercase", spec.uppercase.setting,
                                             company))
        if spec.enabled_by is not None:
            problems.extend(_switch_problems(f"{origin}: enabled_by.setting",
                                             spec.enabled_by.setting, company))
        if spec.by_setting is not None:
            problems.extend(_choices_problems(origin, spec.by_setting, company))
        problems.extend(_line_group_problems(origin, spec, company))
        exemption = spec.start_date_exempt
        if exemption is not None and exemption.setting is not None:
            problems.extend(_switch_problems(f"{origin}: start_date_exempt.setting",
                                             exemption.setting, company))
        if spec.lines is not None:
            problems.extend(f"{origin}: lines.fields.{path}.template: a template chosen by a "
                            "setting is for the record's own fields, not its lines"
                            for path, mapping in spec.lines.fields.items()
                            if isinstance(mapping.template, SettingTemplate))
    return problems


def _line_group_problems(origin: str, spec: EntitySpec,
                         company: Mapping[str, CompanySetting]) -> list[str]:
    """`lines.group.when`: a choice or boolean setting of the company's, and one of its
    values."""
    group = spec.lines.group if spec.lines is not None else None
    if group is None or group.when is None:
        return []
    where, when = f"{origin}: lines.group.when", group.when
    setting = company.get(when.setting)
    if setting is None or setting.kind is SettingKind.TEXT:
        known = [name for name, s in company.items() if s.kind is not SettingKind.TEXT]
        return [f"{where}.setting: {when.setting!r} is not a choice or boolean setting of "
                f"{COMPANY_SETTINGS_FILE} (its choice and boolean settings: "
                f"{', '.join(known) or 'none'})"]
    if choice_key(when.equals) not in setting.template_choices:
        return [f"{where}.equals: {when.equals!r} is not a value of {when.setting} (its "
                f"values: {', '.join(map(repr, setting.template_choices))})"]
    return []


def _switch_problems(where: str, name: str,
                     company: Mapping[str, CompanySetting]) -> list[str]:
    switch = company.get(name)
    if switch is not None and switch.kind is SettingKind.BOOLEAN:
        return []
    known = [key for key, s in company.items() if s.kind is SettingKind.BOOLEAN]
    return [f"{where}: {name!r} is not a boolean setting of {COMPANY_SETTINGS_FILE} (its "
            f"boolean settings: {', '.join(known) or 'none'})"]


def _lookup_default_problems(origin: str, spec: EntitySpec,
                             company: Mapping[str, CompanySetting]) -> Iterator[str]:
    """A lookup's default read from a setting reads a text setting of the company's."""
    for path, mapping in spec.all_fields().items():
        name = mapping.lookup.default_setting if mapping.lookup is not None else None
        if name is None:
            continue
        setting = company.get(name)
        if setting is None or setting.kind is not SettingKind.TEXT:
            known = [key for key, s in company.items() if s.kind is SettingKind.TEXT]
            yield (f"{origin}: {path}.lookup.default: {name!r} is not a text setting of "
                   f"{COMPANY_SETTINGS_FILE} (its text settings: {', '.join(known) or 'none'})")


def _choices_problems(origin: str, chosen: SettingChoices,
                      company: Mapping[str, CompanySetting]) -> list[str]:
    """`by_setting`: a company-wide choice setting, and one entry per choice of it."""
    where = f"{origin}: by_setting"
    setting = company.get(chosen.setting)
    if setting is None or setting.kind is not SettingKind.CHOICE:
        known = [name for name, s in company.items() if s.kind is SettingKind.CHOICE]
        return [f"{where}.setting: {chosen.setting!r} is not a choice setting of "
                f"{COMPANY_SETTINGS_FILE} (its choice settings: {', '.join(known) or 'none'})"]
    missing = [c for c in setting.choices if c not in chosen.choices]
    extra = [c for c in chosen.choices if c not in setting.choices]
    if not missing and not extra:
        return []
    return [f"{where}.choices: say what each choice of {chosen.setting} "
            f"({', '.join(map(repr, setting.choices))}) changes, {{}} for nothing"
            + (f"; missing {', '.join(map(repr, missing))}" if missing else "")
            + (f"; not a choice {', '.join(map(repr, extra))}" if extra else "")]
