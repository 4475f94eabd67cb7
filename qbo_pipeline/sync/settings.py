"""A company's settings as a run reads them: the stored values over the declared defaults,
a value checked when it is set, and what each setting decides (whether a spec syncs, its row
filters, whether the company syncs by itself).

Stored values are a flat mapping of setting key to value (`{"time_entry.approved_only":
false, "sync_mode": "manual"}`); a key no longer declared (a spec removed) is ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from qbo_pipeline.qbo.entities import DISPLAY_NAME_ENTITIES
from qbo_pipeline.qbo.fields import nearest
from qbo_pipeline.specs import EntitySpec, SpecSet
from qbo_pipeline.specs.company_settings import (
    ENABLED,
    TEXT_SETTING_MAX_LENGTH,
    CompanySetting,
    SettingKind,
    choice_key,
)
from qbo_pipeline.specs.models import FieldMapping, SettingSpec, SettingSwitch, SettingValue
from qbo_pipeline.sync.names import COLLISION_SETTING, DISPLAY_NAME
from qbo_pipeline.sync.values import describe_character, quoted, unsafe_characters

SYNC_MODE = "sync_mode"
MANUAL = "manual"
TRUE_WORDS = ("true", "on", "yes", "1")
FALSE_WORDS = ("false", "off", "no", "0")


class SettingError(ValueError):
    """A key or a value that is not a setting's; the message names it and what is allowed."""


def setting_of(catalog: Mapping[str, CompanySetting], key: str) -> CompanySetting:
    if key not in catalog:
        near = nearest(key, list(catalog))
        raise SettingError(f"there is no setting {key!r}"
                           + (f" - did you mean {near!r}?" if near else "")
                           + f" (settings: {', '.join(catalog)})")
    return catalog[key]


def parse_value(catalog: Mapping[str, CompanySetting], key: str, text: str) -> bool | str:
    """The value `text` gives setting `key`, or a SettingError naming the allowed values."""
    setting = setting_of(catalog, key)
    given = text.strip()
    if setting.kind is SettingKind.BOOLEAN:
        if given.lower() in TRUE_WORDS:
            return True
        if given.lower() in FALSE_WORDS:
            return False
        raise SettingError(f"{key} is on or off: give true or false, not {text!r}")
    if setting.kind is SettingKind.TEXT:
        return "" if setting.optional and not given else _text_value(key, given)
    if given not in setting.choices:
        raise SettingError(f"{key} is one of {', '.join(map(repr, setting.choices))}, not "
                           f"{text!r}")
    return given


def _text_value(key: str, given: str) -> str:
    if not given:
        raise SettingError(f"{key} is a name: give one, not an empty text")
    if len(given) > TEXT_SETTING_MAX_LENGTH:
        raise SettingError(f"{key} holds at most {TEXT_SETTING_MAX_LENGTH} characters, not "
                           f"{len(given)}")
    if found := unsafe_characters(given):
        position, character = found[0]
        raise SettingError(f"{key} {quoted(given)} holds {describe_character(character)} at "
                           f"position {position}: type the name as QuickBooks shows it")
    return given


def effective(catalog: Mapping[str, CompanySetting],
              stored: Mapping[str, Any] | None) -> dict[str, bool | str]:
    """Every setting's value for a company: what it set, else the default."""
    stored = stored or {}
    return {key: _stored_or_default(setting, stored.get(key))
            for key, setting in catalog.items()}


def _stored_or_default(setting: CompanySetting, value: Any) -> bool | str:
    # A value stored by an older release, or of another kind since, is not trusted.
    if setting.kind is SettingKind.BOOLEAN and isinstance(value, bool):
        return value
    if setting.kind is SettingKind.CHOICE and value in setting.choices:
        return str(value)
    if setting.kind is SettingKind.TEXT and isinstance(value, str) and (
            value.strip() or setting.optional):
        return value
    return setting.default


def spec_enabled(spec: EntitySpec, values: Mapping[str, Any]) -> bool:
    """On unless the company switched the spec off, or left off the company-wide setting
    its `enabled_by` names."""
    return switched_off_by(spec, values) is None


def switched_off_by(spec: EntitySpec, values: Mapping[str, Any]) -> str | None:
    """The setting that keeps the spec off for the company: the company-wide one its
    `enabled_by` names, else `<spec>.enabled`; None while the spec syncs."""
    if spec.enabled_by is not None and not values.get(spec.enabled_by.setting):
        return spec.enabled_by.setting
    own = f"{spec.name}.{ENABLED}"
    return None if values.get(own, True) else own


def row_filters(spec: EntitySpec, values: Mapping[str, Any]) -> dict[str, bool]:
    """The spec's row filters as the company has them (name -> on)."""
    return {name: bool(values.get(f"{spec.name}.{name}", setting.default))
            for name, setting in spec.settings.items()}


def syncs_by_itself(values: Mapping[str, Any]) -> bool:
    """False for a company on manual sync: only a person's per-record syncs run."""
    return values.get(SYNC_MODE) != MANUAL


def for_company(spec: EntitySpec, values: Mapping[str, Any]) -> EntitySpec:
    """The spec as the company has it: what its `by_setting` choice changes applied, each
    template a setting chooses replaced by the chosen one, and its capitals on or off, so
    that mapping, diffing and reading back see plain templates and a plain switch only."""
    spec = _with_choice(spec, values)
    if isinstance(spec.uppercase, SettingSwitch):
        spec = spec.model_copy(update={"uppercase": bool(values.get(spec.uppercase.setting))})
    spec = _with_lookup_defaults(spec, values)
    spec = _with_line_group(spec, values)
    spec = _with_start_date_exemption(spec, values)
    chosen = spec.chosen_templates
    if not chosen:
        return spec
    fields = {}
    for path, mapping in spec.fields.items():
        if path in chosen:
            template = chosen[path]
            value = choice_key(values.get(template.setting))
            if value not in template.choices:
                raise SettingError(f"{spec.name}: {path}: setting {template.setting} is "
                                   f"{value!r}, which has no template (choices: "
                                   f"{', '.join(template.choices)})")
            mapping = mapping.model_copy(update={"template": template.choices[str(value)]})
        fields[path] = mapping
    return spec.model_copy(update={"fields": fields})


def _with_line_group(spec: EntitySpec, values: Mapping[str, Any]) -> EntitySpec:
    """The spec's lines grouped or not, as the company's setting says (seed 002's
    "Aggregate Time/Expense Items" or "Use Individual Time/Expense Items")."""
    lines = spec.lines
    if lines is None or lines.group is None or lines.group.when is None:
        return spec
    when = lines.group.when
    grouped = choice_key(values.get(when.setting)) == choice_key(when.equals)
    group = lines.group.model_copy(update={"when": None}) if grouped else None
    return spec.model_copy(update={"lines": lines.model_copy(update={"group": group})})


def _with_start_date_exemption(spec: EntitySpec, values: Mapping[str, Any]) -> EntitySpec:
    """The start-date exemption kept (decided) for a company with its setting on, dropped
    for the others (seed 002's "Sync All Unpaid Invoices")."""
    exemption = spec.start_date_exempt
    if exemption is None or exemption.setting is None:
        return spec
    kept = exemption.model_copy(update={"setting": None}) \
        if values.get(exemption.setting) is True else None
    return spec.model_copy(update={"start_date_exempt": kept})


def _with_lookup_defaults(spec: EntitySpec, values: Mapping[str, Any]) -> EntitySpec:
    """Each lookup default a setting gives, with the company's value filled in."""
    fields = {path: _lookup_default_filled(mapping, values)
              for path, mapping in spec.fields.items()}
    if fields == spec.fields:
        return spec
    return spec.model_copy(update={"fields": fields})


def _lookup_default_filled(mapping: FieldMapping, values: Mapping[str, Any]) -> FieldMapping:
    lookup = mapping.lookup
    if lookup is None or not isinstance(lookup.default, SettingValue):
        return mapping
    value = values.get(lookup.default.setting)
    default = lookup.default.model_copy(update={"value": None if value is None else str(value)})
    return mapping.model_copy(update={"lookup": lookup.model_copy(update={"default": default})})


def _with_choice(spec: EntitySpec, values: Mapping[str, Any]) -> EntitySpec:
    """The spec with the company's choice of its `by_setting` applied: a direction narrowed
    to push drops the pull section (nothing comes back), policies are overridden."""
    chosen = spec.by_setting
    if chosen is None:
        return spec
    value = values.get(chosen.setting)
    if value not in chosen.choices:
        raise SettingError(f"{spec.name}: by_setting: setting {chosen.setting} is {value!r}, "
                           f"which the spec does not know (choices: "
                           f"{', '.join(chosen.choices)})")
    change = chosen.choices[str(value)]
    update: dict[str, Any] = {"by_setting": None}
    if change.direction is not None:
        update["direction"] = change.direction
    if change.only_when_used is not None:
        update["only_when_used"] = change.only_when_used
    if change.conflict_fields:
        update["conflict"] = spec.conflict.model_copy(update={
            "fields": {**spec.conflict.fields, **change.conflict_fields}})
    if change.when is not None:
        # A row filter that is always on, named by the company setting: no spec setting has
        # that name (the loader checks), so no stored value turns it off.
        update["settings"] = {**spec.settings, chosen.setting: SettingSpec(
            description=f"{chosen.setting} is {value}", default=True, when=change.when)}
    chosen_spec = spec.model_copy(update=update)
    return chosen_spec if chosen_spec.pulls else chosen_spec.model_copy(update={"pull": None})


def as_configured(specs: SpecSet, name: str,
                  stored: Mapping[str, Any] | None = None) -> EntitySpec:
    """Spec `name` as a company with these stored settings has it (None: the defaults)."""
    return for_company(specs[name], effective(specs.settings, stored))


def settings_read(spec: EntitySpec) -> set[str]:
    """The company-wide settings a spec reads by name (its templates, its capitals, what its
    `by_setting` chooses), and the DisplayName collision rule of a spec that names customers,
    vendors or employees (a row held back under "Hold back" is tried again under the new rule)."""
    switch = {spec.uppercase.setting} if isinstance(spec.uppercase, SettingSwitch) else set()
    if spec.enabled_by is not None:
        switch.add(spec.enabled_by.setting)
    chosen = {spec.by_setting.setting} if spec.by_setting is not None else set()
    named = {COLLISION_SETTING} if spec.qbo_entity in DISPLAY_NAME_ENTITIES \
        and DISPLAY_NAME in spec.fields else set()
    return ({template.setting for template in spec.chosen_templates.values()} | switch | chosen
            | named | _line_group_setting(spec))


def _line_group_setting(spec: EntitySpec) -> set[str]:
    """The setting that groups the spec's lines, and the one that exempts rows from the start
    date: a change of either changes which rows or lines go, so the rows are read again."""
    group = spec.lines.group if spec.lines is not None else None
    found = {group.when.setting} if group is not None and group.when is not None else set()
    exemption = spec.start_date_exempt
    if exemption is not None and exemption.setting is not None:
        found.add(exemption.setting)
    return found


def specs_to_read_again(key: str, specs: Iterable[EntitySpec]) -> list[str]:
    """The specs whose rows a change of setting `key` must have the next run read whole: a
    spec's own setting (a filter, on or off) changes which of its rows sync, including rows
    an earlier run read and left out, which its change window would not bring back; a
    company-wide setting a spec's fields read (a name format) changes every row's payload.

    A lookup default read from a setting (the income account of new services) changes the
    records created from now on, not the ones made already: the spec that reads it is not
    read again, but the specs creating records through it are, so that the rows held back
    for want of such a record (an unknown account) are tried again."""
    every = list(specs)
    by_name = {spec.name: spec for spec in every}
    spec_name, _, rest = key.partition(".")
    return [spec.name for spec in every
            if (rest and spec.name == spec_name) or (not rest and key in settings_read(spec))
            or (not rest and key in _creators_settings(spec, by_name))]


def _creators_settings(spec: EntitySpec, specs: Mapping[str, EntitySpec]) -> set[str]:
    """The lookup defaults' settings of the specs that `spec`'s lookups create records with."""
    creators = {m.lookup.create.spec for m in spec.all_fields().values()
                if m.lookup is not None and m.lookup.create is not None}
    return {setting for name in creators if name in specs
            for m in specs[name].fields.values()
            if m.lookup is not None and (setting := m.lookup.default_setting) is not None}
