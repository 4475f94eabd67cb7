"""Change events the backend publishes; webhooks (and anything else) subscribe to them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class ChangeEvent:
    """One change to one QBO object, as a webhook notification reports it."""

    realm_id: str
    entity: str  # QBO entity name, e.g. "Customer"
    entity_id: str
    operation: str  # "Create", "Update", "Delete", "Void", "Merge" (QBO's webhook operations)
    last_updated: datetime  # timezone-aware


ChangeListener = Callable[[ChangeEvent], None]
