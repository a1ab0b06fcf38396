"""Cross-Modal Transformer: emotion from face, voice and words.

The front door is `cmt.load_model()`; it imports torch only when called, so the
wire contract (`cmt.contract`) and settings (`cmt.settings`) stay importable in a
tutor-only install.
"""

from cmt.contract import EMOTIONS, MODALITIES

__all__ = ["EMOTIONS", "MODALITIES", "available_models", "load_model"]


def load_model(name_or_path: str | None = None, device: str | None = None):
    """Load an emotion model; None loads the shipped default checkpoint."""
    from cmt.model import load_model as _load

    return _load(name_or_path, device=device)


def available_models() -> list[str]:
    from cmt.model import available_models as _available

    return _available()
