"""Releases that carry a schema migration, committed to a test source repository.

``commit_additive_migration`` (expand): a nullable ``links.note`` column; the
release serving before it runs on that schema unchanged, so it must be
promoted. ``commit_destructive_migration`` (contract too early): renames
``links.owner`` to ``links.owned_by`` while the release serving now still
reads ``owner``; the candidate itself is consistent with the rename, so only
the current release breaks, and staging must reject it naming the migration.
``commit_corrupting_migration``: a data migration meant to move every target
to https with its two arguments swapped: the schema is untouched and both
releases read the rewritten targets alike, so only the targets the guard read
before migrating show it.
Both revisions follow whatever head the checkout has (``head_revision``), so
migrations added later on main do not collide with them. Used by
``tests/e2e/test_migrations.py``; a benchmark can use them the same way.
"""

from __future__ import annotations

from pathlib import Path

from tests.e2e.guard_harness import git

from steadylink.links.migrate import head_revision

VERSIONS = "src/steadylink/links/migrations/versions"
ADDITIVE_REVISION = "t9001_note"
DESTRUCTIVE_REVISION = "t9002_owned_by"
CORRUPTING_REVISION = "t9003_https"


def commit_release(
    repo: Path,
    branch: str,
    *,
    base: str,
    message: str,
    edits: tuple[tuple[str, str, str], ...] = (),
    files: dict[str, str] | None = None,
) -> None:
    """A branch off ``base`` with ``edits`` (path, old, new) applied and ``files`` written."""
    git(repo, "checkout", "-q", base)
    git(repo, "checkout", "-q", "-B", branch)
    for path, old, new in edits:
        target = repo / path
        text = target.read_text()
        assert old in text, f"{old!r} not found in {path}"
        target.write_text(text.replace(old, new, 1))
    for path, text in (files or {}).items():
        (repo / path).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)
    git(repo, "checkout", "-q", "main")


def migration(revision: str, down: str, summary: str, upgrade: str, downgrade: str) -> str:
    uses_sa = "sa." in upgrade + downgrade  # the ruff gate refuses an unused import
    return (
        f'"""{summary}\n\nRevision ID: {revision}\nRevises: {down}\n"""\n\n'
        "from __future__ import annotations\n\n"
        + ("import sqlalchemy as sa\n" if uses_sa else "")
        + "from alembic import op\n\n"
        f'revision = "{revision}"\ndown_revision = "{down}"\nbranch_labels = None\ndepends_on = None\n\n\n'
        f"def upgrade() -> None:\n{upgrade}\n\n\ndef downgrade() -> None:\n{downgrade}\n"
    )


def commit_additive_migration(repo: Path, branch: str = "expand", base: str = "main") -> str:
    """Expand: add a nullable column the current release does not know and does not need."""
    upgrade = (
        '    with op.batch_alter_table("links") as batch:\n'
        '        batch.add_column(sa.Column("note", sa.Text, nullable=True))'
    )
    downgrade = '    with op.batch_alter_table("links") as batch:\n        batch.drop_column("note")'
    commit_release(
        repo, branch, base=base, message="v2: links get a note (a nullable column)",
        edits=(("src/steadylink/links/schema.py",
                '    Column("owner", String(64), nullable=True),\n',
                '    Column("owner", String(64), nullable=True),\n    Column("note", Text, nullable=True),\n'),),
        files={f"{VERSIONS}/{ADDITIVE_REVISION}.py": migration(
            ADDITIVE_REVISION, head_revision(), "links.note: a nullable note", upgrade, downgrade)},
    )  # fmt: skip
    return ADDITIVE_REVISION


def commit_destructive_migration(repo: Path, branch: str = "contract", base: str = "expand") -> str:
    """Contract too early: rename a column the release serving now still reads."""
    upgrade = (
        '    with op.batch_alter_table("links") as batch:\n'
        '        batch.alter_column("owner", new_column_name="owned_by")'
    )
    downgrade = (
        '    with op.batch_alter_table("links") as batch:\n'
        '        batch.alter_column("owned_by", new_column_name="owner")'
    )
    schema, store = "src/steadylink/links/schema.py", "src/steadylink/links/sql_store.py"
    commit_release(
        repo, branch, base=base, message="v3: rename links.owner to owned_by",
        edits=(
            (schema, 'Column("owner", String(64), nullable=True)',
             'Column("owned_by", String(64), nullable=True, key="owner")'),
            (store, "password_hash, owner\"", "password_hash, owned_by\""),
            (store, '"owner": link.owner,', '"owned_by": link.owner,'),
        ),
        files={f"{VERSIONS}/{DESTRUCTIVE_REVISION}.py": migration(
            DESTRUCTIVE_REVISION, ADDITIVE_REVISION, "rename links.owner to links.owned_by",
            upgrade, downgrade)},
    )  # fmt: skip
    return DESTRUCTIVE_REVISION


def commit_corrupting_migration(repo: Path, branch: str = "to-https", base: str = "expand") -> str:
    """A data migration with one wrong line: it moves every https target to http (after expand's)."""
    upgrade = "    op.execute(\"UPDATE links SET url = replace(url, 'https://', 'http://')\")"
    downgrade = "    pass  # targets cannot be told apart afterwards"
    commit_release(
        repo, branch, base=base, message="v2: every link to https (a data migration)",
        files={f"{VERSIONS}/{CORRUPTING_REVISION}.py": migration(
            CORRUPTING_REVISION, ADDITIVE_REVISION, "every link target to https", upgrade, downgrade)},
    )  # fmt: skip
    return CORRUPTING_REVISION
