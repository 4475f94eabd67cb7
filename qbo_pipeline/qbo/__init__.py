"""The QBO API client: OAuth tokens, rate limits, retries, paging, batches and the error catalog."""

from qbo_pipeline.qbo.client import BatchOperation, BatchResult, QBOClient, batch_request_id
from qbo_pipeline.qbo.errors import (
    AuthError,
    ConnectionExpiredError,
    DuplicateDocNumberError,
    DuplicateNameError,
    ObjectNotFoundError,
    QBOError,
    QBOServiceError,
    StaleObjectError,
    ThrottledError,
    TokenEndpointError,
    ValidationError,
)
from qbo_pipeline.qbo.settings import QBOSettings
from qbo_pipeline.qbo.tokens import InMemoryTokenStore, OAuthTokenProvider, TokenSet, TokenStore

__all__ = [
    "AuthError",
    "BatchOperation",
    "BatchResult",
    "ConnectionExpiredError",
    "DuplicateDocNumberError",
    "DuplicateNameError",
    "InMemoryTokenStore",
    "OAuthTokenProvider",
    "ObjectNotFoundError",
    "QBOClient",
    "QBOError",
    "QBOServiceError",
    "QBOSettings",
    "StaleObjectError",
    "ThrottledError",
    "TokenEndpointError",
    "TokenSet",
    "TokenStore",
    "ValidationError",
    "batch_request_id",
]
