"""The policy layer: from emotion readings to the tutor's tone, with the reason in words."""

from __future__ import annotations

from dataclasses import dataclass, field

from cmt.contract import AnalyzeResponse

# Learning-centred state a fused emotion most often signals in tutoring (first cut).
STATE_OF_EMOTION = {
    "neutral": "engaged",
    "joy": "delighted",
    "surprise": "engaged",
    "sadness": "anxious",
    "fear": "anxious",
    "anger": "frustrated",
    "disgust": "frustrated",
}
TONE_OF_STATE = {
    "engaged": "neutral",
    "delighted": "upbeat",
    "anxious": "encouraging",
    "frustrated": "calm",
    "confused": "calm",
    "bored": "upbeat",
}
MIN_CONFIDENCE = 0.45  # below this a reading does not move the tutor


@dataclass(frozen=True)
class Decision:
    state: str
    tone: str
    pacing: str
    reason: str
    changes: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Policy:
    """Adaptive by default; mode "control" keeps a neutral tone whatever it reads."""

    mode: str = "adaptive"
    tone: str = "neutral"
    state: str = "engaged"

    def decide(self, reading: AnalyzeResponse | None) -> Decision:
        before = (self.state, self.tone)
        if self.mode == "control":
            reason = "control mode: no adaptation"
        elif reading is None:
            reason = "no emotion reading this turn: style unchanged"
        elif reading.confidence < MIN_CONFIDENCE:
            reason = (f"{reading.label} {reading.confidence:.2f} is below {MIN_CONFIDENCE}: "
                      "style unchanged")
        else:
            self.state = STATE_OF_EMOTION[reading.label]
            self.tone = TONE_OF_STATE[self.state]
            reason = f"{reading.label} {reading.confidence:.2f} → {self.state} → {self.tone} tone"
        changes = {}
        if before[0] != self.state:
            changes["state"] = [before[0], self.state]
        if before[1] != self.tone:
            changes["tone"] = [before[1], self.tone]
        return Decision(state=self.state, tone=self.tone, pacing="normal", reason=reason,
                        changes=changes)
