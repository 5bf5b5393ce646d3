"""The guard's own key and address: ``ops/server.py``."""

from __future__ import annotations

from fastapi import FastAPI

from steadylink.links.service import authenticate
from steadylink.links.sql_store import open_store
from steadylink.ops.server import OPERATOR_KEY_NAME, ensure_operator_key, operator_key_path, ops_server_config
from steadylink.settings import Settings


def test_a_lost_operator_key_is_replaced_not_doubled(settings: Settings) -> None:
    first = ensure_operator_key(settings).secret
    assert ensure_operator_key(settings).secret == first  # kept while its file is there
    operator_key_path(settings.data_dir).unlink()
    second = ensure_operator_key(settings).secret
    store = open_store(settings.database_url)
    try:
        active = [k for k in store.list_keys() if k.name == OPERATOR_KEY_NAME and not k.is_revoked]
        assert len(active) == 1  # key names are unique: the lost one is revoked
        assert authenticate(store=store, secret=first) is None
        assert authenticate(store=store, secret=second) is not None
    finally:
        store.close()


def test_the_ops_api_has_its_own_loopback_address(settings: Settings) -> None:
    """A front door on every interface does not put the plain-HTTP ops API there too."""
    app = FastAPI()
    public = settings.with_overrides(host="0.0.0.0", ops_port=18081)
    config = ops_server_config(public, app)
    assert (config.host, config.port) == ("127.0.0.1", 18081)
    chosen = ops_server_config(public.with_overrides(ops_host="10.0.0.5"), app)
    assert chosen.host == "10.0.0.5"
