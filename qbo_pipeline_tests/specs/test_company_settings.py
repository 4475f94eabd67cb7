"""`mapping_specs/company_settings.yaml`: the company-wide settings, loaded with the specs and
checked whole, each problem naming the file and the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from qbo_pipeline.specs import load_specs
from qbo_pipeline.specs.company_settings import COMPANY_SETTINGS_FILE, SettingKind
from qbo_pipeline.sync.settings import settings_read, spec_enabled
from qbo_pipeline_tests.specs.test_loader import CLIENT, problems_of, write_specs

REPO_SPECS = Path(__file__).resolve().parents[2] / "mapping_specs"


def with_settings(directory: Path, text: str) -> Path:
    write_specs(directory, client=CLIENT)
    (directory / COMPANY_SETTINGS_FILE).write_text(text, encoding="utf-8")
    return directory


def test_the_shipped_settings_load_beside_the_specs() -> None:
    specs = load_specs(REPO_SPECS)
    assert COMPANY_SETTINGS_FILE.removesuffix(".yaml") not in specs.names  # not a spec
    sync_mode = specs.settings["sync_mode"]
    assert (sync_mode.kind, sync_mode.default) == (SettingKind.CHOICE, "automatic")


def test_specs_without_a_settings_file_have_only_their_own(tmp_path: Path) -> None:
    specs = load_specs(write_specs(tmp_path, client=CLIENT))
    assert list(specs.settings) == ["client.enabled"]


@pytest.mark.parametrize(("text", "problem"), [
    ("sync_mode: {description: d, kind: choice, choices: [a, b], default: c}\n",
     "sync_mode: a choice setting lists its choices and its default is one of them"),
    ("sync_mode: {description: d, kind: boolean, default: maybe}\n",
     "sync_mode: a boolean setting has no choices and a default of true or false"),
    ("sync_mode: {description: d, kind: switch, default: true}\n", "sync_mode.kind:"),
    ("sync_mode: {description: d, kind: boolean, default: true, shown: yes}\n",
     "sync_mode.shown:"),
    ("SyncMode: {description: d, kind: boolean, default: true}\n",
     "SyncMode: a setting's name is snake_case"),
    ("client: {description: d, kind: boolean, default: true}\n",
     "client: is the name of a spec; name the setting otherwise"),
    ("- sync_mode\n", "(top level): write one `name:` mapping per setting"),
    ("sync_mode: {description: d, kind: boolean\n", "not valid YAML"),
])
def test_a_bad_settings_file_names_the_file_and_the_setting(tmp_path: Path, text: str,
                                                            problem: str) -> None:
    problems = problems_of(with_settings(tmp_path, text))
    assert any(COMPANY_SETTINGS_FILE in found and problem in found for found in problems), \
        problems


CHOSEN = """
name: client
qbo_entity: Customer
source: {table: clients, primary_key: id, updated_at: updated_at, business_date: created_at}
fields:
  DisplayName:
    template: {setting: SETTING, choices: CHOICES}
    direction: push
match_keys: [DisplayName]
on_source_delete: inactivate
"""
FORMATS = ("customer_name_format: {description: d, kind: choice, choices: [Short, Long], "
           "default: Short}\nsync_mode: {description: d, kind: boolean, default: true}\n")


@pytest.mark.parametrize(("setting", "choices", "problem"), [
    ("customer_name_format", "{Short: '{name}', Long: '{name} ({city})'}", None),
    ("name_format", "{Short: '{name}'}",
     "'name_format' is not a choice or boolean setting of company_settings.yaml (its choice "
     "and boolean settings: customer_name_format, sync_mode)"),
    # A boolean setting chooses by "true" and "false" (seed 004's print marking).
    ("sync_mode", "{'true': '{name}', 'false': '{name} ({city})'}", None),
    ("sync_mode", "{Short: '{name}'}",
     "give one template per choice of sync_mode ('true', 'false'); missing 'true', 'false'; "
     "not a choice 'Short'"),
    ("customer_name_format", "{Short: '{name}'}",
     "give one template per choice of customer_name_format ('Short', 'Long'); missing 'Long'"),
    ("customer_name_format", "{Short: '{name}', Long: '{name}', Tall: '{name}'}",
     "not a choice 'Tall'"),
    ("customer_name_format", "{Short: '{name}', Long: '{1}'}", "choice 'Long': template"),
])
def test_a_template_names_a_choice_or_boolean_setting_and_covers_its_choices(
        tmp_path: Path, setting: str, choices: str, problem: str | None) -> None:
    write_specs(tmp_path, client=CHOSEN.replace("SETTING", setting).replace("CHOICES", choices))
    (tmp_path / COMPANY_SETTINGS_FILE).write_text(FORMATS, encoding="utf-8")
    if problem is None:
        assert load_specs(tmp_path)["client"].chosen_templates["DisplayName"].columns == [
            "name", "city"]
        return
    problems = problems_of(tmp_path)
    assert any("client.yaml" in found and problem in found for found in problems), problems


def test_a_template_chosen_by_a_setting_must_be_push_only(tmp_path: Path) -> None:
    two_way = CHOSEN.replace("SETTING", "customer_name_format").replace(
        "CHOICES", "{Short: '{name}', Long: '{name}'}").replace("    direction: push\n", "")
    write_specs(tmp_path, client=two_way.replace("qbo_entity: Customer",
                                                 "qbo_entity: Customer\ndirection: two_way"))
    (tmp_path / COMPANY_SETTINGS_FILE).write_text(FORMATS, encoding="utf-8")
    assert any("a template chosen by setting customer_name_format cannot be read back" in found
               for found in problems_of(tmp_path))


def test_capitals_are_switched_by_a_boolean_setting(tmp_path: Path) -> None:
    spec = CLIENT + "uppercase: {setting: SWITCH}\n"
    write_specs(tmp_path, client=spec.replace("SWITCH", "customer_name_format"))
    (tmp_path / COMPANY_SETTINGS_FILE).write_text(FORMATS, encoding="utf-8")
    assert any("uppercase: 'customer_name_format' is not a boolean setting" in found
               and "(its boolean settings: sync_mode)" in found
               for found in problems_of(tmp_path))
    write_specs(tmp_path, client=spec.replace("SWITCH", "sync_mode"))
    assert load_specs(tmp_path)["client"].uppercase is not False


TWO_WAY = """
name: client
qbo_entity: Customer
direction: two_way
source: {table: clients, primary_key: id, updated_at: updated_at, business_date: created_at}
fields:
  DisplayName: {column: name}
  PrimaryEmailAddr.Address: {column: email, direction: push}
match_keys: [DisplayName]
on_source_delete: inactivate
pull: {target: linked}
by_setting:
  setting: customer_name_format
  choices: CHOICES
"""


@pytest.mark.parametrize(("choices", "problem"), [
    ("{Short: {direction: push}, Long: {only_when_used: true}}", None),
    ("{Short: {}}", "by_setting.choices: say what each choice of customer_name_format ('Short', "
                    "'Long') changes, {} for nothing; missing 'Long'"),
    ("{Short: {}, Long: {}, Tall: {}}", "not a choice 'Tall'"),
    ("{Short: {}, Long: {direction: pull}}",
     "by_setting.choices.Long.direction: a choice can keep the spec's direction (two_way) or "
     "make it push, not pull"),
    ("{Short: {}, Long: {conflict_fields: {PrimaryEmailAdr.Address: source_wins}}}",
     "by_setting.choices.Long.conflict_fields.PrimaryEmailAdr.Address:"),
    ("{Short: {}, Long: {only_when_usd: true}}", "only_when_usd"),
])
def test_what_a_setting_chooses_of_a_spec_is_checked_with_it(
        tmp_path: Path, choices: str, problem: str | None) -> None:
    """Seed 004's per-company settings shape a spec (customers synced when used, or always):
    each choice of the setting says what it changes, and only what a spec can be."""
    write_specs(tmp_path, client=TWO_WAY.replace("CHOICES", choices))
    (tmp_path / COMPANY_SETTINGS_FILE).write_text(FORMATS, encoding="utf-8")
    if problem is None:
        assert load_specs(tmp_path)["client"].by_setting is not None
        return
    problems = problems_of(tmp_path)
    assert any("client.yaml" in found and problem in found for found in problems), problems


def test_a_spec_is_shaped_only_by_a_choice_setting(tmp_path: Path) -> None:
    write_specs(tmp_path, client=TWO_WAY.replace("customer_name_format", "sync_mode").replace(
        "CHOICES", "{Short: {}, Long: {}}"))
    (tmp_path / COMPANY_SETTINGS_FILE).write_text(FORMATS, encoding="utf-8")
    assert any("by_setting.setting: 'sync_mode' is not a choice setting" in found
               for found in problems_of(tmp_path))


def test_an_entity_is_turned_on_by_a_boolean_setting(tmp_path: Path) -> None:
    """Seed 004: "CREDIT MEMO EXPORT: Here you can enable the syncing of Credit Memos": a spec's
    `enabled_by` names a boolean setting of the company's; anything else is refused, naming the
    file and the boolean settings there are. Off, the spec is not synced; on, it is."""
    spec = CLIENT + "enabled_by: {setting: SWITCH}\n"
    write_specs(tmp_path, client=spec.replace("SWITCH", "customer_name_format"))
    (tmp_path / COMPANY_SETTINGS_FILE).write_text(FORMATS, encoding="utf-8")
    assert any("enabled_by.setting: 'customer_name_format' is not a boolean setting" in found
               and "(its boolean settings: sync_mode)" in found
               for found in problems_of(tmp_path))
    write_specs(tmp_path, client=spec.replace("SWITCH", "sync_mode"))
    client = load_specs(tmp_path)["client"]
    assert not spec_enabled(client, {"sync_mode": False, "client.enabled": True})
    assert spec_enabled(client, {"sync_mode": True})
    assert not spec_enabled(client, {"sync_mode": True, "client.enabled": False})
    assert "sync_mode" in settings_read(client)  # turning it on reads the rows again


def test_the_shipped_credit_memos_are_off_until_enabled() -> None:
    """Seed 004: credit memo export is something a company enables: off by default."""
    specs = load_specs(REPO_SPECS)
    assert specs.settings["credit_memo_export"].default is False
    for name in ("credit_memo", "credit_memo_applied"):
        enabled_by = specs[name].enabled_by
        assert enabled_by is not None and enabled_by.setting == "credit_memo_export"
