"""The tutor app's settings, read from the environment and `.env`: the database, sign-in,
the LLM, and where the CMT is. Built once where the app starts (`attune` commands) and passed
in; importing this module needs no torch and nothing from `cmt`.

Every variable is `ATTUNE_<FIELD>` (e.g. `ATTUNE_DATABASE_URL`, `ATTUNE_CMT_URL`). The model and
the service read theirs (checkpoint, device, API keys, rate limits) from the same environment
through `cmt.settings.Settings`; a variable both need (`ATTUNE_HOME`, `ATTUNE_BIOMETRICS`) means
the same to both.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def find_data_dir() -> Path:
    """data/ (lessons, policy, moves, scenarios): the checkout's, else the installed
    `attune_data`."""
    checkout = Path(__file__).resolve().parent.parent / "data"
    if (checkout / "lessons").is_dir():
        return checkout
    spec = importlib.util.find_spec("attune_data")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"no data folder: neither {checkout} nor an installed attune_data "
                           "package (reinstall Attune)")
    return Path(list(spec.submodule_search_locations)[0])


REPO_DATA_DIR = find_data_dir()
EMBEDDED = "embedded"  # the model in the app process, no HTTP
LOCAL = "local"  # the app starts the CMT service on loopback and talks to it over HTTP
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ATTUNE_", env_file=".env", extra="ignore")

    home: Path = Field(default=Path.home() / ".attune", description="where the app keeps its files")
    database_url: str = Field(default="", description="SQLAlchemy URL; empty means SQLite in home")
    data_dir: Path = Field(default=REPO_DATA_DIR, description="lesson packs, policy, scenarios")

    # The CMT: "local" (service on loopback, started by the app), "embedded" (in-process),
    # or the base URL of a running service, e.g. http://cmt.example:8100.
    cmt_url: str = LOCAL
    cmt_api_key: SecretStr | None = None
    cmt_timeout_s: float = 5.0

    # Privacy.
    biometrics: bool = Field(default=True, description="False: no face or voice emotion at all "
                             "(text-only affect; the mode for EU schools)")
    retention_days: int = Field(default=365, ge=0, description="readings older than this are purged")

    # The app.
    host: str = "127.0.0.1"
    port: int = 7860
    llm: str | None = Field(default=None, description='optional chat model, "provider/model"')
    llm_timeout_s: float = Field(default=10.0, gt=0, description="longest wait for the chat "
                                 "model's reply before the template reply is used")
    # "code": students sign in with a handle and the code from `attune admin add-student`;
    # "open": a typed name is enough (the single-laptop demo). Unset: "open" while the app
    # listens on localhost only, "code" beyond it.
    student_sign_in: Literal["open", "code"] | None = None
    student_turn_limit: str = Field(default="30/minute", description="messages per student; "
                                    'beyond it a polite "slow down"; empty: no limit')

    @model_validator(mode="after")
    def _derive(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.home / 'attune.db'}"
        if self.student_sign_in is None:
            self.student_sign_in = "open" if self.host in LOOPBACK_HOSTS else "code"
        return self

    @field_validator("student_turn_limit")
    @classmethod
    def _rate_ok(cls, v: str) -> str:
        from limits import parse_many

        v = v.strip()
        if v:
            parse_many(v)  # ValueError names the string it could not read
        return v

    @field_validator("cmt_url")
    @classmethod
    def _cmt_url_ok(cls, v: str) -> str:
        if v in (EMBEDDED, LOCAL) or v.startswith(("http://", "https://")):
            return v
        raise ValueError(f"cmt_url must be {LOCAL!r}, {EMBEDDED!r} or an http(s):// URL, got {v!r}")
