"""Tokens are encrypted at rest, and the secret key is required, checked and never shown."""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from qbo_pipeline.state import (
    SecretCipher,
    SecretKeyError,
    StateTokenStore,
    StoredTokens,
    TokenExpiry,
    TokenRecord,
    cipher_for,
    create_state_engine,
    disconnect_realm,
    init_state_db,
    load_cipher,
    load_tokens,
    save_tokens,
    state_sessions,
    token_expiry,
    upsert_realm,
)
from qbo_pipeline.state.crypto import development_key_file

REFRESH = "AB11-refresh-token-plaintext-7f3c"
ACCESS = "eyJ-access-token-plaintext-91d2"
EXPIRES = datetime(2024, 3, 1, 13, 0, tzinfo=UTC)


@pytest.fixture
def cipher() -> SecretCipher:
    return load_cipher({"QBO_PIPELINE_SECRET_KEY": Fernet.generate_key().decode()})


def test_tokens_round_trip_per_realm(sessions: sessionmaker[Session],
                                     cipher: SecretCipher) -> None:
    store = StateTokenStore(sessions, cipher)
    store.save("r1", StoredTokens(REFRESH, ACCESS, EXPIRES))
    store.save("r2", StoredTokens("other-refresh"))
    store.save("r1", StoredTokens(REFRESH + "-rotated", ACCESS, EXPIRES))
    loaded = store.load("r1")
    assert loaded == StoredTokens(REFRESH + "-rotated", ACCESS, EXPIRES)
    assert store.load("r2") == StoredTokens("other-refresh")
    assert store.load("r3") is None
    assert REFRESH not in repr(loaded) and ACCESS not in repr(loaded)


def test_tokens_are_encrypted_in_postgres_and_sqlite(sessions: sessionmaker[Session],
                                                     cipher: SecretCipher) -> None:
    with sessions.begin() as session:
        save_tokens(session, cipher, "r1", StoredTokens(REFRESH, ACCESS, EXPIRES))
    with sessions.begin() as session:
        stored = session.execute(select(TokenRecord.refresh_token_encrypted,
                                        TokenRecord.access_token_encrypted)).one()
    assert all(value and REFRESH not in value and ACCESS not in value for value in stored)


def test_the_plaintext_never_reaches_the_sqlite_file(tmp_path: Path,
                                                     cipher: SecretCipher) -> None:
    engine = create_state_engine(f"sqlite:///{tmp_path / 'state.db'}")
    init_state_db(engine)
    with state_sessions(engine).begin() as session:
        save_tokens(session, cipher, "r1", StoredTokens(REFRESH, ACCESS, EXPIRES))
    engine.dispose()
    written = b"".join(path.read_bytes() for path in tmp_path.glob("state.db*"))
    assert b"r1" in written  # the row is there...
    assert REFRESH.encode() not in written and ACCESS.encode() not in written  # ...sealed


def test_another_key_cannot_read_the_tokens(sessions: sessionmaker[Session],
                                            cipher: SecretCipher) -> None:
    with sessions.begin() as session:
        save_tokens(session, cipher, "r1", StoredTokens(REFRESH))
    other = load_cipher({"QBO_PIPELINE_SECRET_KEY": Fernet.generate_key().decode()})
    with sessions.begin() as session, pytest.raises(
            SecretKeyError, match="cannot decrypt the stored tokens of realm r1: it was "
                                  "encrypted with another secret key"):
        load_tokens(session, other, "r1")


def test_key_rotation_reads_old_tokens(sessions: sessionmaker[Session]) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with sessions.begin() as session:
        save_tokens(session, load_cipher({"QBO_PIPELINE_SECRET_KEY": old}), "r1",
                    StoredTokens(REFRESH))
    rotated = load_cipher({"QBO_PIPELINE_SECRET_KEY": f"{new},{old}"})
    with sessions.begin() as session:
        tokens = load_tokens(session, rotated, "r1")
        assert tokens is not None and tokens.refresh_token == REFRESH


def test_disconnecting_a_realm_forgets_its_tokens(sessions: sessionmaker[Session],
                                                  cipher: SecretCipher) -> None:
    with sessions.begin() as session:
        upsert_realm(session, "r1")
        save_tokens(session, cipher, "r1", StoredTokens(REFRESH))
        disconnect_realm(session, "r1")
        assert load_tokens(session, cipher, "r1") is None


def test_production_requires_the_key(tmp_path: Path) -> None:
    with pytest.raises(SecretKeyError, match="QBO_PIPELINE_SECRET_KEY is not set: production"):
        load_cipher({"QBO_PIPELINE_ENV": "production"}, key_file=tmp_path / "key")
    with pytest.raises(SecretKeyError, match="QBO_PIPELINE_SECRET_KEY is not set"):
        load_cipher({}, production=True, key_file=tmp_path / "key")
    assert not (tmp_path / "key").exists()


def test_a_malformed_key_is_named_but_not_shown() -> None:
    secret = "not-a-fernet-key-but-still-secret"
    with pytest.raises(SecretKeyError, match="key 2 is not a Fernet key") as raised:
        load_cipher({"QBO_PIPELINE_SECRET_KEY": f"{Fernet.generate_key().decode()},{secret}"})
    assert secret not in str(raised.value)


def test_development_generates_one_private_key_file(tmp_path: Path) -> None:
    key_file = tmp_path / "dev" / "secret.key"
    first = load_cipher({}, key_file=key_file)
    sealed = first.encrypt(REFRESH)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    second = load_cipher({}, key_file=key_file)
    assert second.decrypt(sealed, what="a token") == REFRESH
    assert "hidden" in repr(second)



def test_the_development_key_lies_beside_the_state_db_whatever_the_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found from outside: the development key's place was relative to the working directory,
    so a run started in another folder made a new key and could not read the tokens. It lies
    beside the SQLite state DB it belongs to: any folder finds the same key."""
    monkeypatch.delenv("QBO_PIPELINE_SECRET_KEY", raising=False)
    state_url = f"sqlite:///{tmp_path / 'company' / 'state.db'}"
    sessions = state_sessions(create_state_engine(state_url))
    init_state_db(sessions.kw["bind"])
    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    here.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(here)
    with sessions.begin() as session:
        upsert_realm(session, "r1")
        save_tokens(session, cipher_for(sessions, {}), "r1", StoredTokens(REFRESH))
    monkeypatch.chdir(elsewhere)
    with sessions.begin() as session:
        stored = load_tokens(session, cipher_for(sessions, {}), "r1")
    assert stored is not None and stored.refresh_token == REFRESH
    key_file = tmp_path / "company" / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert not list(here.iterdir()) and not list(elsewhere.iterdir())
    # A state DB on a server has no folder: its key is the user's, at one absolute place.
    server_key = development_key_file("postgresql+psycopg://127.0.0.1/test")
    assert server_key.is_absolute() and server_key.name == "secret.key"


HARD = datetime(2029, 10, 1, tzinfo=UTC)
ROLLING = datetime(2027, 6, 1, tzinfo=UTC)


def test_both_refresh_token_expiries_round_trip_and_the_earlier_ends_it(
        sessions: sessionmaker[Session], cipher: SecretCipher) -> None:
    store = StateTokenStore(sessions, cipher)
    store.save("r1", StoredTokens(REFRESH, ACCESS, EXPIRES, ROLLING, HARD))
    assert store.load("r1") == StoredTokens(REFRESH, ACCESS, EXPIRES, ROLLING, HARD)
    with sessions.begin() as session:
        expiry = token_expiry(session, "r1")
    assert expiry is not None
    assert (expiry.refresh_token_expires_at, expiry.refresh_token_hard_expires_at) == (
        ROLLING, HARD)
    assert expiry.refresh_token_ends_at == ROLLING
    assert TokenExpiry(None, HARD, ROLLING).refresh_token_ends_at == ROLLING
    assert TokenExpiry(None, None, HARD).refresh_token_ends_at == HARD
    assert TokenExpiry(None, None).refresh_token_ends_at is None


def test_what_a_locked_refresh_saves_is_stored_when_it_ends(
        sessions: sessionmaker[Session], cipher: SecretCipher) -> None:
    store = StateTokenStore(sessions, cipher)
    store.save("r1", StoredTokens(REFRESH, ACCESS, EXPIRES))
    with store.refreshing("r1") as locked:
        assert locked.load() == StoredTokens(REFRESH, ACCESS, EXPIRES)
        locked.save(StoredTokens(REFRESH + "-rotated", ACCESS + "-new", EXPIRES, ROLLING))
    assert store.load("r1") == StoredTokens(REFRESH + "-rotated", ACCESS + "-new", EXPIRES,
                                            ROLLING)


def test_a_locked_refresh_that_fails_stores_nothing(sessions: sessionmaker[Session],
                                                    cipher: SecretCipher) -> None:
    store = StateTokenStore(sessions, cipher)
    store.save("r1", StoredTokens(REFRESH, ACCESS, EXPIRES))
    with pytest.raises(RuntimeError, match="token endpoint down"), \
            store.refreshing("r1") as locked:
        locked.save(StoredTokens("half-done", None))
        raise RuntimeError("token endpoint down")
    assert store.load("r1") == StoredTokens(REFRESH, ACCESS, EXPIRES)
    with store.refreshing("r2") as locked:  # never connected: nothing to lock or load
        assert locked.load() is None
