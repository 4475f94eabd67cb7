"""`mapping_specs/company_settings.yaml`: the company-wide settings, loaded with the specs and
checked whole, each problem naming the file and the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from qbo_pipeline.specs import load_specs
from qbo_pipeline.specs.company_settings import COMPANY_SETTINGS_FILE, SettingKind
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
