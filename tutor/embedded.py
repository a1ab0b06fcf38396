"""The CMT in the app's own process: the one module of `tutor` that imports the model side
(`cmt.serve`, and through it torch). The layer contract ("tutor never imports torch") names it
as its only exception. Nothing imports it at module level: `embedded` mode, `local` mode's
loopback service, a remote client's fallback and `attune simulate`'s reading of the words call
it when they start, so a tutor-only install (no torch) never loads it.

The model's own settings (checkpoint, device, threads, the service's keys and limits) come
from the same environment through `cmt.settings.Settings`; what the tutor decides (biometrics
off) is passed on.
"""

from __future__ import annotations

from cmt.serve.app import create_app
from cmt.serve.engine import Engine, InputError
from cmt.settings import Settings as ModelSettings
from tutor.settings import Settings

__all__ = ["Engine", "InputError", "load_engine", "serve_engine"]


def model_settings(settings: Settings) -> ModelSettings:
    return ModelSettings(biometrics=settings.biometrics)


def load_engine(settings: Settings, *, similarity: bool = True) -> Engine:
    """The shipped (or ATTUNE_CHECKPOINT's) model as an engine in this process; with
    `similarity`, it also compares free-text answers (the base text encoder, loaded beside)."""
    model = model_settings(settings)
    return Engine.load(model.checkpoint, device=model.device, biometrics=settings.biometrics,
                       text_encoder=model.text_encoder if similarity else None)


def serve_engine(settings: Settings, engine: Engine) -> str:
    """`engine` behind the CMT service on a free loopback port, in a thread; its base URL."""
    from cmt.serve import app as serve_app

    _server, url = serve_app.serve_in_thread(create_app(model_settings(settings),
                                                        engine_factory=lambda: engine))
    return url
