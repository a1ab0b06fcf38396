"""The tutor's words. First cut: a tone-aware reply; the curriculum engine plugs in here."""

from __future__ import annotations

import itertools

from tutor.policy import Decision

OPENERS = {
    "neutral": ("Okay.", "Got it.", "Thanks."),
    "upbeat": ("Love that energy!", "Great!", "Nice one!"),
    "encouraging": ("You're doing fine, take your time.", "No rush, we'll work through it together.",
                    "It's okay to find this hard; that's how learning feels."),
    "calm": ("Let's slow down a moment.", "Let's take this one step at a time.",
             "Deep breath; we'll untangle it together."),
}
PROMPTS = (
    "Tell me what you're working on, or type an answer and I'll check it.",
    "What would you like to try next?",
    "Shall we look at the next step?",
)


class Dialogue:
    """Varies its phrasing per tone so it never repeats itself word for word twice running."""

    def __init__(self):
        self._cycles = {tone: itertools.cycle(lines) for tone, lines in OPENERS.items()}
        self._prompts = itertools.cycle(PROMPTS)

    def reply(self, student_text: str, decision: Decision) -> str:
        opener = next(self._cycles.get(decision.tone, self._cycles["neutral"]))
        return f"{opener} {next(self._prompts)}"
