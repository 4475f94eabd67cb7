"""Where the QBO accounting API and its OAuth server are, and how to talk to them."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

PRODUCTION_BASE_URL = "https://quickbooks.api.intuit.com"
SANDBOX_BASE_URL = "https://sandbox-quickbooks.api.intuit.com"
# Intuit's own discovery document path; the emulator serves the same one.
DISCOVERY_PATH = "/.well-known/openid_configuration"


class QBOSettings(BaseModel):
    """Connection settings for one QBO app (the client id/secret are the app's, not a realm's).

    ``environment`` is what intuit-oauth's ``AuthClient`` takes: ``"sandbox"``, ``"production"``,
    or the URL of a discovery document (the emulator's). ``client_secret`` is a ``SecretStr``, so
    it prints as ``**********`` in reprs, logs and validation errors.
    """

    model_config = ConfigDict(frozen=True)

    base_url: str = SANDBOX_BASE_URL
    environment: str = "sandbox"
    client_id: str
    client_secret: SecretStr
    redirect_uri: str
    minorversion: int = 75
    timeout_seconds: float = Field(default=30.0, gt=0)
    max_retries: int = Field(default=5, ge=0)
    backoff_seconds: float = Field(default=0.5, ge=0)
    # QBO sends no Retry-After with its 429 and says to wait up to a minute: start higher.
    throttle_backoff_seconds: float = Field(default=5.0, ge=0)
    requests_per_minute: int = Field(default=500, gt=0)
    requests_per_second: int = Field(default=10, gt=0)
    batches_per_minute: int = Field(default=40, gt=0)
    concurrent_requests: int = Field(default=10, gt=0)
    # Batches of one spec in flight at once: 40 batch requests a minute need two or more when
    # QBO takes over 1.5 s to answer one; within the 10 requests QBO allows at once.
    write_concurrency: int = Field(default=4, ge=1, le=10)
    rate_window_seconds: float = Field(default=60.0, gt=0)

    @field_validator("base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL, got {value!r}")
        return value.rstrip("/")

    @classmethod
    def for_emulator(cls, emulator_url: str, client_id: str, client_secret: str,
                     redirect_uri: str, **overrides: object) -> QBOSettings:
        """Settings for a local emulator: the API and the discovery document share its URL."""
        root = emulator_url.rstrip("/")
        return cls.model_validate({
            "base_url": root, "environment": root + DISCOVERY_PATH, "client_id": client_id,
            "client_secret": client_secret, "redirect_uri": redirect_uri, **overrides,
        })

    def company_url(self, realm_id: str) -> str:
        return f"{self.base_url}/v3/company/{realm_id}"
