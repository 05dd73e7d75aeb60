"""Settings: every knob, read from the environment or `.env`; `.env.example` lists them all."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.errors import ConfigError
from bot.sla.rules import Policy, PolicyError, parse_policy

__all__ = ["ConfigError", "Settings", "load_policy"]


DEFAULT_POLICY_FILE = Path(__file__).with_name("policy.toml")


class Settings(BaseSettings):
    """The service's configuration; construct with keyword arguments in tests."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: SecretStr = Field(
        default=SecretStr("sqlite:///var/intake.db"),
        description="sqlite:///path or postgresql://user:pass@host/db; the async driver is chosen",
    )
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    policy_file: Path = DEFAULT_POLICY_FILE
    log_level: str = "INFO"


def load_policy(path: Path) -> Policy:
    """Read and validate the policy file; PolicyError says what is wrong and where."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"cannot read policy file {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise PolicyError(f"policy file {path} is not UTF-8 text: {exc}") from exc
    return parse_policy(text, source=f"policy file {path}")
