"""The database: engine set-up, migrations, and small query functions."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# The newest migration's revision (tests check it is Alembic's head): a database already there
# is opened without importing Alembic, most of a second of the app's start-up.
SCHEMA_HEAD = "0003"


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets WAL, foreign keys and a busy timeout, and its folder.

    SQLite also gets synchronous=FULL (a commit the app has acknowledged survives a power
    loss, at the cost of one fsync of the log per commit) and secure_delete (deleted rows
    are overwritten with zeros, not just unlinked).
    """
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:":
            Path(u.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA secure_delete=ON")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def scrub(engine: Engine) -> bool:
    """Make deleted rows unreadable on disk, after erasure or a retention purge.

    SQLite: deleted content is zeroed as it goes (secure_delete), VACUUM rebuilds the file
    without free pages, and a TRUNCATE checkpoint empties the write-ahead log, which still
    holds the old pages otherwise. PostgreSQL: VACUUM marks the dead rows' space free; the
    bytes go when it is reused (VACUUM FULL rewrites the tables: docs/compliance.md).
    False when SQLite's log could not be emptied (another connection was reading).
    """
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("VACUUM")
            busy, _, _ = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
            return not busy
        conn.exec_driver_sql("VACUUM")
        return True


def shown_url(url: str) -> str:
    """`url` fit to print or log: its password, if any, masked."""
    return make_url(url).render_as_string(hide_password=True)


def alembic_config(url: str):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision` with Alembic (on the engine's own connection)."""
    from alembic import command

    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def at_head(engine: Engine) -> bool:
    """Whether the schema is at SCHEMA_HEAD already (False for a new database)."""
    with engine.connect() as conn:
        try:
            versions = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalars()
            return versions.all() == [SCHEMA_HEAD]
        except DBAPIError:  # no alembic_version table: nothing migrated yet
            return False


def init_db(url: str) -> sessionmaker[Session]:
    """Engine + migrations + a session factory: what the app and the tests start from."""
    engine = make_engine(url)
    if not at_head(engine):
        upgrade(engine)
    return sessionmaker(engine, expire_on_commit=False)
