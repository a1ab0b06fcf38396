from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("ATTUNE_SHARED_DIR", REPO.parent / "shared"))

# The test session's own ATTUNE_HOME (database, caches, ONNX exports, the converted Whisper
# checkpoint), set before any test imports cmt.settings, and inherited by the apps the tests
# start: a run never reads or writes the user's ~/.attune. ATTUNE_TEST_HOME names a folder to
# keep between runs (its exports are then made once); else a fresh one, removed at the end.
TEST_HOME = Path(os.environ.get("ATTUNE_TEST_HOME") or tempfile.mkdtemp(prefix="attune-test-home-"))
os.environ["ATTUNE_HOME"] = str(TEST_HOME)
# ...and its own Gradio cache (GRADIO_TEMP_DIR), removed at the end: what the apps under test
# take in or export (a teacher's export a test never downloads) is not left in the system's
# temp folder after the run.
TEST_GRADIO = Path(tempfile.mkdtemp(prefix="attune-test-gradio-"))
os.environ["GRADIO_TEMP_DIR"] = str(TEST_GRADIO)


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(TEST_GRADIO, ignore_errors=True)
    if not os.environ.get("ATTUNE_TEST_HOME"):
        shutil.rmtree(TEST_HOME, ignore_errors=True)


def pytest_collection_modifyitems(config, items):
    """Tests marked `shared` skip, visibly, where ../shared is not beside the checkout."""
    if SHARED.is_dir():
        return
    skip = pytest.mark.skip(reason=f"needs ../shared (datasets, media) at {SHARED}")
    for item in items:
        if "shared" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return SHARED


@pytest.fixture(scope="session")
def datasets_dir(shared_dir) -> Path:
    return shared_dir / "datasets"


# ---------------------------------------------------------------- databases
POSTGRES_URL = os.environ.get("ATTUNE_TEST_POSTGRES_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def _postgres_database():
    """A fresh PostgreSQL database for this test run, or a skip that says why."""
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    try:
        admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
        with admin.connect() as c:
            name = f"attune_test_{uuid.uuid4().hex[:10]}"
            c.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as e:  # no server, no driver, no rights: all mean "cannot test here"
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}: {type(e).__name__}: {e}".splitlines()[0])
    url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    return admin, name, url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    """The same tests run against SQLite (file, WAL) and PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'attune.db'}"
        return
    from sqlalchemy import text

    admin, name, url = _postgres_database()
    yield url
    from sqlalchemy.orm import close_all_sessions

    close_all_sessions()
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def db(db_url):
    from tutor.db import init_db

    factory = init_db(db_url)
    yield factory
    factory.kw["bind"].dispose()


REDIS_URL = os.environ.get("ATTUNE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def redis_url():
    """A reachable Redis (database 15 by default), or a skip that says why."""
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except Exception as e:  # no server, no client library: both mean "cannot test here"
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {type(e).__name__}: {e}".splitlines()[0])
    return REDIS_URL


# ---------------------------------------------------------------- a test double of the model
@pytest.fixture
def keyword_engine():
    from cmt.serve.engine import Engine
    from tests.fakes import KeywordModel

    return Engine(KeywordModel())


@pytest.fixture
def one_thread():
    """Tiny models run faster on one thread (and don't fight other processes for cores)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
