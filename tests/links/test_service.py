import asyncio
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from steadylink.clock import FakeClock
from steadylink.errors import Conflict, Gone, InvalidInput, NotFound
from steadylink.links import service
from steadylink.links.codes import SystemRandom
from steadylink.links.model import LinkChanges, LinkKind, NewLink, StoredFile
from steadylink.links.passwords import verify_password
from steadylink.links.sql_store import SqlStore
from steadylink.links.writer import LinkWriter
from steadylink.settings import Settings
from steadylink.types import Role


class _Seq:
    def __init__(self, text: str) -> None:
        self.text, self.i = text, 0

    def choice(self, seq: str) -> str:
        self.i += 1
        return self.text[(self.i - 1) % len(self.text)]


def create(store: SqlStore, settings: Settings, clock: FakeClock, **kw: object) -> service.Link:
    return service.create_link(
        store=store,
        settings=settings,
        clock=clock,
        rng=_Seq("abcdefg"),
        new=NewLink(**kw),  # type: ignore[arg-type]
    )


def test_create_with_generated_code(store: SqlStore, settings: Settings, clock: FakeClock) -> None:
    link = create(store, settings, clock, url="https://example.com/a")
    assert link.code == "abcdefg"
    assert store.get_link("abcdefg") == link


def test_generated_code_collision_is_retried(
    store: SqlStore, settings: Settings, clock: FakeClock
) -> None:
    rng = _Seq("abcdefgabcdefghjkmnpq")
    first = service.create_link(
        store=store, settings=settings, clock=clock, rng=rng, new=NewLink(url="https://a.example/")
    )
    second = service.create_link(
        store=store, settings=settings, clock=clock, rng=rng, new=NewLink(url="https://b.example/")
    )
    assert (first.code, second.code) == ("abcdefg", "hjkmnpq")


def test_custom_codes_are_unique_regardless_of_case(
    store: SqlStore, settings: Settings, clock: FakeClock
) -> None:
    create(store, settings, clock, url="https://example.com/", code="Sale")
    with pytest.raises(Conflict):
        create(store, settings, clock, url="https://example.com/", code="sale")
    assert store.count_links() == 1


def test_bad_input_writes_nothing(store: SqlStore, settings: Settings, clock: FakeClock) -> None:
    for kw in (
        {"url": "javascript:alert(1)"},
        {"url": "https://x.example/", "code": "api"},
        {"url": "https://x.example/", "max_visits": 0},
        {"url": "https://x.example/", "expires_at": clock.now() - timedelta(seconds=1)},
        {},
    ):
        with pytest.raises(InvalidInput):
            create(store, settings, clock, **kw)
    assert store.count_links() == 0


def test_expiry_and_visit_limits(store: SqlStore, settings: Settings, clock: FakeClock) -> None:
    link = create(
        store,
        settings,
        clock,
        url="https://x.example/",
        expires_at=clock.now() + timedelta(hours=1),
    )
    assert (
        service.resolve_link(link=store.get_link(link.code), now=clock.now()).outcome
        is service.Outcome.FOUND
    )
    clock.advance(3600)
    gone = service.resolve_link(link=store.get_link(link.code), now=clock.now())
    assert gone.outcome is service.Outcome.GONE
    with pytest.raises(Gone):
        service.raise_for(gone, link.code)

    limited = create(store, settings, clock, url="https://y.example/", code="twice", max_visits=2)
    assert [store.take_limited_visit(limited.code) for _ in range(3)] == [True, True, False]
    after = store.get_link("twice")
    assert after is not None and after.visits == 2
    assert service.resolve_link(link=after, now=clock.now()).outcome is service.Outcome.GONE


def test_disabled_and_deleted_links_are_not_found(
    store: SqlStore, settings: Settings, clock: FakeClock
) -> None:
    link = create(store, settings, clock, url="https://x.example/", code="off")
    service.change_link(
        store=store,
        settings=settings,
        clock=clock,
        code="off",
        changes=LinkChanges(is_disabled=True),
    )
    assert (
        service.resolve_link(link=store.get_link("off"), now=clock.now()).outcome
        is service.Outcome.NOT_FOUND
    )
    service.delete_link(store=store, code=link.code)
    with pytest.raises(NotFound):
        service.delete_link(store=store, code=link.code)
    seq, codes = store.invalidations_since(0)
    assert codes == ["off", "off", "off"] and seq >= 3  # created, disabled, deleted


def test_change_link_fields(store: SqlStore, settings: Settings, clock: FakeClock) -> None:
    create(store, settings, clock, url="https://x.example/", code="c1", password="pw", max_visits=5)
    clock.advance(10)
    changed = service.change_link(
        store=store,
        settings=settings,
        clock=clock,
        code="c1",
        changes=LinkChanges(url="https://y.example/new", max_visits=None, password=None),
    )
    assert changed.url == "https://y.example/new"
    assert changed.max_visits is None and changed.password_hash is None
    assert changed.updated_at == clock.now()
    assert store.get_link("c1") == changed


def test_passwords_are_stored_hashed(store: SqlStore, settings: Settings, clock: FakeClock) -> None:
    link = create(store, settings, clock, url="https://x.example/", password="s3cret")
    assert link.password_hash and "s3cret" not in link.password_hash
    assert verify_password(link.password_hash, "s3cret")
    assert not verify_password(link.password_hash, "wrong")


def test_file_links(store: SqlStore, settings: Settings, clock: FakeClock) -> None:
    stored = StoredFile("a" * 64, "report.pdf", 10, "application/pdf")
    link = create(store, settings, clock, file=stored, code="report")
    assert link.kind is LinkKind.FILE and store.get_link("report") == link
    with pytest.raises(InvalidInput, match="either a URL or a file"):
        create(store, settings, clock, file=stored, url="https://x.example/")


def test_api_keys_are_shown_once_and_stored_hashed(store: SqlStore, clock: FakeClock) -> None:
    issued = service.create_key(store=store, clock=clock, name="ci", role=Role.EDITOR)
    assert issued.secret.startswith("slk_")
    assert service.authenticate(store=store, secret=issued.secret) == issued.key
    assert service.authenticate(store=store, secret=issued.secret + "x") is None
    service.revoke_key(store=store, clock=clock, key_id=issued.key.id)
    assert service.authenticate(store=store, secret=issued.secret) is None
    with pytest.raises(NotFound):
        service.revoke_key(store=store, clock=clock, key_id=issued.key.id)
    with pytest.raises(InvalidInput):
        service.create_key(store=store, clock=clock, name=" ", role=Role.ADMIN)


def test_key_names_are_unique_among_active_keys(store: SqlStore, clock: FakeClock) -> None:
    """Approvals and the audit log name keys: a second "alice" could pass for the first."""
    first = service.create_key(store=store, clock=clock, name="alice", role=Role.DEPLOYER)
    with pytest.raises(Conflict) as refused:
        service.create_key(store=store, clock=clock, name="alice", role=Role.ADMIN)
    assert refused.value.field == "name"
    service.revoke_key(store=store, clock=clock, key_id=first.key.id)
    again = service.create_key(store=store, clock=clock, name="alice", role=Role.DEPLOYER)
    assert again.key.id != first.key.id


def test_key_cache_sees_a_revocation_elsewhere_within_a_second(
    sqlite_store: SqlStore, clock: FakeClock
) -> None:
    keys = service.KeyCache(sqlite_store, clock)
    issued = service.create_key(store=sqlite_store, clock=clock, name="ci", role=Role.EDITOR)
    assert keys.authenticate(issued.secret) == issued.key
    # revoked by another worker or the CLI: this process does not know yet
    service.revoke_key(store=sqlite_store, clock=clock, key_id=issued.key.id)
    clock.advance(service.KEY_CACHE_SECONDS - 0.01)
    assert keys.authenticate(issued.secret) == issued.key
    clock.advance(0.01)
    assert keys.authenticate(issued.secret) is None


def test_key_cache_forgets_a_key_revoked_here_at_once(sqlite_store: SqlStore, clock: FakeClock) -> None:
    keys = service.KeyCache(sqlite_store, clock)
    kept = service.create_key(store=sqlite_store, clock=clock, name="kept", role=Role.VIEWER)
    revoked = service.create_key(store=sqlite_store, clock=clock, name="gone", role=Role.VIEWER)
    assert keys.authenticate(kept.secret) and keys.authenticate(revoked.secret)
    service.revoke_key(store=sqlite_store, clock=clock, key_id=revoked.key.id)
    keys.forget(revoked.key.id)
    assert keys.authenticate(revoked.secret) is None
    assert keys.authenticate(kept.secret) == kept.key


def test_key_cache_does_not_remember_unknown_secrets(sqlite_store: SqlStore, clock: FakeClock) -> None:
    keys = service.KeyCache(sqlite_store, clock)
    assert keys.authenticate("slk_nope") is None
    issued = service.create_key(store=sqlite_store, clock=clock, name="new", role=Role.VIEWER)
    assert keys.authenticate(issued.secret) == issued.key  # no waiting for a cached "unknown"


def test_a_refused_duplicate_writes_no_change_note(
    store: SqlStore, settings: Settings, clock: FakeClock
) -> None:
    create(store, settings, clock, url="https://x.example/", code="Taken")
    seq, _ = store.invalidations_since(0)
    with pytest.raises(Conflict):
        create(store, settings, clock, url="https://y.example/", code="taken")
    assert store.invalidations_since(seq) == (seq, [])
    assert store.count_links() == 1


def test_creations_alone_keep_the_sqlite_wal_bounded(
    sqlite_store: SqlStore, settings: Settings, clock: FakeClock
) -> None:
    # ~6 WAL pages a creation: never checkpointed, 1,500 of them would pass 30 MB
    for i in range(1_500):
        service.create_link(
            store=sqlite_store, settings=settings, clock=clock, rng=SystemRandom(),
            new=NewLink(url=f"https://example.com/{i}"),
        )
    wal = Path(f"{sqlite_store.url.removeprefix('sqlite:///')}-wal")
    assert wal.stat().st_size < 16 * 2**20


# create_link_async: the web app's create, through a LinkWriter ------------------


def create_async(store: SqlStore, settings: Settings, clock: FakeClock, rng: _Seq, **kw: object) -> service.Link:
    writer = LinkWriter(store)

    async def main() -> service.Link:
        return await service.create_link_async(
            insert=writer.insert, settings=settings, clock=clock, rng=rng, new=NewLink(**kw)  # type: ignore[arg-type]
        )

    try:
        return asyncio.run(main())
    finally:
        writer.close()


def test_async_create_follows_the_same_rules(store: SqlStore, settings: Settings, clock: FakeClock) -> None:
    rng = _Seq("abcdefgabcdefghjkmnpq")
    first = create_async(store, settings, clock, rng, url="https://a.example/")
    second = create_async(store, settings, clock, rng, url="https://b.example/")  # "abcdefg" taken: retried
    assert (first.code, second.code) == ("abcdefg", "hjkmnpq")
    assert store.get_link("hjkmnpq") == second
    create_async(store, settings, clock, rng, url="https://example.com/", code="Sale")
    with pytest.raises(Conflict, match="taken"):
        create_async(store, settings, clock, rng, url="https://example.com/", code="sALE")
    with pytest.raises(InvalidInput):
        create_async(store, settings, clock, rng, url="javascript:alert(1)")
    assert store.count_links() == 3


def test_async_create_gives_up_when_every_generated_code_is_taken(
    store: SqlStore, settings: Settings, clock: FakeClock
) -> None:
    create_async(store, settings, clock, _Seq("abcdefg"), url="https://a.example/")
    with pytest.raises(Conflict, match="free code"):
        create_async(store, settings, clock, _Seq("abcdefg"), url="https://b.example/")


def test_async_create_hashes_a_password_off_the_loop(
    store: SqlStore, settings: Settings, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """argon2 takes tens of milliseconds: on the loop it would hold up the worker's redirects."""
    hashed_on: list[str] = []
    real = service._hash_optional_password

    def spy(password: str | None) -> str | None:
        hashed_on.append(threading.current_thread().name)
        return real(password)

    monkeypatch.setattr(service, "_hash_optional_password", spy)
    link = create_async(store, settings, clock, _Seq("abcdefg"), url="https://x.example/", password="s3cret")
    assert link.password_hash and verify_password(link.password_hash, "s3cret")
    assert hashed_on and hashed_on[0] != threading.main_thread().name
