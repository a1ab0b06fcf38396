"""What serving the model needs, and nothing from training (cmt.training): the front door
`load_model()` and `EmotionModel` (cmt.model.emotion), the fusion model, each modality's
expert, the calibrated stack, reliability, the frozen encoders and their token preparation
(cmt.model.tokens), the pinned weight packages, and the checkpoint files' one reader and
writer (cmt.model.checkpoint).

Importing this package imports no torch; `load_model` does.
"""

from __future__ import annotations

__all__ = ["DEFAULT_CHECKPOINT", "EmotionModel", "Prediction", "available_models", "load_model"]


def __getattr__(name: str):
    if name in __all__:
        from cmt.model import emotion

        return getattr(emotion, name)
    raise AttributeError(f"module 'cmt.model' has no attribute {name!r}")
