"""The QBO API client and QBO's protocol knowledge: the entity catalog, OAuth tokens and
consent, rate limits, retries, changes since a moment (CDC or query), finding by field,
batches and the error catalog."""

from qbo_pipeline.qbo.client import (
    BATCH_ITEM_LIMIT,
    BatchOperation,
    BatchResult,
    QBOClient,
    batch_item_id,
    batch_request_id,
)
from qbo_pipeline.qbo.entities import (
    CDC_ENTITIES,
    QBO_ENTITIES,
    DeleteAction,
    EntityKind,
    QboEntity,
    newer_sync_token,
    qbo_entity,
)
from qbo_pipeline.qbo.errors import (
    AuthError,
    ConnectionExpiredError,
    ConsentError,
    DuplicateDocNumberError,
    DuplicateNameError,
    ObjectNotFoundError,
    QBOError,
    QBOServiceError,
    StaleObjectError,
    ThrottledError,
    TokenEndpointError,
    ValidationError,
    refused_for_good,
)
from qbo_pipeline.qbo.oauth import ConsentResult, parse_consent_redirect
from qbo_pipeline.qbo.queries import escape_query_value
from qbo_pipeline.qbo.settings import QBOSettings
from qbo_pipeline.qbo.tokens import (
    InMemoryTokenStore,
    LockedTokenSet,
    OAuthTokenProvider,
    RefreshDecision,
    TokenSet,
    TokenStore,
    decide_refresh,
)

__all__ = [
    "BATCH_ITEM_LIMIT",
    "CDC_ENTITIES",
    "QBO_ENTITIES",
    "AuthError",
    "BatchOperation",
    "BatchResult",
    "ConnectionExpiredError",
    "ConsentError",
    "ConsentResult",
    "DeleteAction",
    "DuplicateDocNumberError",
    "DuplicateNameError",
    "EntityKind",
    "InMemoryTokenStore",
    "LockedTokenSet",
    "OAuthTokenProvider",
    "ObjectNotFoundError",
    "QBOClient",
    "QBOError",
    "QBOServiceError",
    "QBOSettings",
    "QboEntity",
    "RefreshDecision",
    "StaleObjectError",
    "ThrottledError",
    "TokenEndpointError",
    "TokenSet",
    "TokenStore",
    "ValidationError",
    "batch_item_id",
    "batch_request_id",
    "decide_refresh",
    "escape_query_value",
    "newer_sync_token",
    "parse_consent_redirect",
    "qbo_entity",
    "refused_for_good",
]
