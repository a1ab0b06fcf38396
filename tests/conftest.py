from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("ATTUNE_SHARED_DIR", REPO.parent / "shared"))


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
