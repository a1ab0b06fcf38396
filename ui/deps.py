"""What the views need, built once and passed in: settings, the database, the CMT client."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from tutor.settings import Settings
from tutor.auth import SignInThrottle
from tutor.client import CMTClient
from tutor.dialogue import Phraser
from tutor.session import TurnLimit


@dataclass(frozen=True)
class Deps:
    settings: Settings
    db: sessionmaker[Session]
    cmt: CMTClient
    similarity: Callable[[str, str], float] | None = None  # free-text answers; None: lexical
    turn_limit: TurnLimit | None = None  # None: one from settings.student_turn_limit
    phraser: Phraser | None = None  # the LLM that phrases replies (ATTUNE_LLM); None: templates
    sign_in_throttle: SignInThrottle | None = None  # None: one with tutor.auth's limits

    def __post_init__(self):
        if self.turn_limit is None:
            object.__setattr__(self, "turn_limit", TurnLimit(self.settings.student_turn_limit))
        if self.sign_in_throttle is None:
            object.__setattr__(self, "sign_in_throttle", SignInThrottle())
