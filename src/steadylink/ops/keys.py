"""Who a key belongs to, on the guard's ops port (its API and its dashboard).

Keys live in the links database. When that database does not answer, the
guard still knows one key for certain: the local operator's, which it made
or read at start (``ops/server.py``) and holds in memory. That key keeps
working — status, acknowledging alerts, rolling back, the dashboard — so an
operator is never locked out of the guard by the outage they are handling.
Any other key gets the store's own 503 until the database answers: nothing
is let in on a guess while it cannot be checked.
"""

from __future__ import annotations

import hmac

from steadylink.errors import StoreError
from steadylink.links.model import ApiKey
from steadylink.links.service import IssuedKey, authenticate
from steadylink.links.store import Store


class OpsKeys:
    def __init__(self, store: Store, operator: IssuedKey | None = None) -> None:
        self.store = store
        self.operator = operator

    def authenticate(self, secret: str) -> ApiKey | None:
        try:
            return authenticate(store=self.store, secret=secret)
        except StoreError:
            if self.operator is not None and hmac.compare_digest(secret, self.operator.secret):
                return self.operator.key
            raise

    def is_active(self, key_id: str) -> bool:
        try:
            return any(k.id == key_id and not k.is_revoked for k in self.store.list_keys())
        except StoreError:
            if self.operator is not None and key_id == self.operator.key.id:
                return True
            raise
