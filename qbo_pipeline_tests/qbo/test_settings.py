"""Settings keep the client secret out of every printed form."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from qbo_pipeline.qbo.settings import QBOSettings


def test_client_secret_never_printed() -> None:
    settings = QBOSettings.for_emulator("http://127.0.0.1:9999/", "client", "s3cret-value",
                                        "http://localhost:8000/callback")
    assert "s3cret-value" not in repr(settings)
    assert "s3cret-value" not in str(settings.model_dump())
    assert settings.client_secret.get_secret_value() == "s3cret-value"
    assert settings.base_url == "http://127.0.0.1:9999"
    assert settings.environment == "http://127.0.0.1:9999/.well-known/openid_configuration"
    assert settings.company_url("123") == "http://127.0.0.1:9999/v3/company/123"


def test_bad_base_url_is_refused_without_echoing_the_secret() -> None:
    with pytest.raises(ValidationError) as raised:
        QBOSettings(base_url="quickbooks.api.intuit.com", client_id="c",
                    client_secret="s3cret-value", redirect_uri="https://app/cb")  # type: ignore[arg-type]
    assert "base_url must be an http(s) URL" in str(raised.value)
    assert "s3cret-value" not in str(raised.value)
