"""What the views need, built once and passed in: settings, the database, the CMT client."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from cmt.settings import Settings
from tutor.client import CMTClient


@dataclass(frozen=True)
class Deps:
    settings: Settings
    db: sessionmaker[Session]
    cmt: CMTClient
    similarity: Callable[[str, str], float] | None = None  # free-text answers; None: lexical
