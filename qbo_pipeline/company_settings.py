"""A connected company's settings, shown and changed (`qbo-pipeline settings`): the declared
settings (`specs.company_settings`) with the company's values over their defaults. A value is
checked before it is stored (`sync.settings.parse_value`); the next run reads it, and reads
the whole table of a spec whose own setting changed."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sqlalchemy.orm import Session, sessionmaker

from qbo_pipeline.specs import SpecSet
from qbo_pipeline.state import get_realm, restart_change_window, set_realm_setting
from qbo_pipeline.sync.settings import effective, parse_value, setting_of, specs_to_read_again


@dataclass(frozen=True)
class SettingView:
    key: str
    value: bool | str
    default: bool | str
    changed: bool  # set for this company, not the default
    description: str
    choices: list[str]

    def to_json(self) -> dict[str, object]:
        return asdict(self)


class SettingsError(Exception):
    """A settings request that cannot be done; nothing was changed."""


def show_settings(sessions: sessionmaker[Session], specs: SpecSet,
                  realm_id: str) -> list[SettingView]:
    with sessions.begin() as session:
        stored = _stored(session, realm_id)
    values = effective(specs.settings, stored)
    return [SettingView(key, values[key], setting.default, key in stored,
                        " ".join(setting.description.split()), list(setting.choices))
            for key, setting in specs.settings.items()]


def change_setting(sessions: sessionmaker[Session], specs: SpecSet, realm_id: str, key: str,
                   text: str | None) -> SettingView:
    """Set `key` to the value `text` gives (None: back to its default)."""
    try:
        value = parse_value(specs.settings, key, text) if text is not None else None
        setting_of(specs.settings, key)
    except ValueError as error:
        raise SettingsError(str(error)) from None
    with sessions.begin() as session:
        _stored(session, realm_id)
        set_realm_setting(session, realm_id, key, value)
        for spec_name in specs_to_read_again(key, specs):
            restart_change_window(session, realm_id, spec_name)
    return next(view for view in show_settings(sessions, specs, realm_id) if view.key == key)


def _stored(session: Session, realm_id: str) -> dict[str, object]:
    realm = get_realm(session, realm_id)
    if realm is None or realm.disconnected_at is not None:
        raise SettingsError(f"realm {realm_id} is not connected (see `qbo-pipeline sync` for "
                            "the connected ones)")
    return dict(realm.settings or {})
