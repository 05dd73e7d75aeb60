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
    http_header_timeout_seconds: float = Field(default=15.0, gt=0)
    http_max_request_bytes: int = Field(default=1024 * 1024, gt=0)
    policy_file: Path = DEFAULT_POLICY_FILE
    log_level: str = "INFO"

    # Classifier
    classifier: str = Field(default="model", pattern="^(model|keywords)$")
    encoder: str = "var/models/multilingual-e5-small"
    classifier_threshold: float = Field(default=0.79, ge=0, le=1)
    classifier_head_file: Path = Path("var/head.json")
    classifier_tuned: bool = False  # no tuned model beat the plain head yet (README)
    classifier_adapters_file: Path = Path(__file__).parent / "classify" / "adapters.safetensors"
    classifier_tuned_head_file: Path = Path(__file__).parent / "classify" / "head-tuned.json"
    classifier_max_tokens: int = Field(default=256, ge=16, le=512)
    classifier_quantize: bool = False
    torch_threads: int = Field(default=2, ge=1)
    classifier_batch: int = Field(default=8, ge=1, le=256)
    classifier_nice: int = Field(default=10, ge=0, le=19)
    worker_concurrency: int = Field(default=32, ge=1, le=256)

    # Mail in
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=2525, ge=0, le=65535)
    smtp_hostname: str = "intake.nettask.local"
    support_addresses: str = "support@nettask.de"
    max_message_bytes: int = Field(default=25 * 1024 * 1024, gt=0)
    smtp_tls_cert: Path | None = None
    smtp_tls_key: Path | None = None
    smtp_require_starttls: bool = False
    smtp_auth_users: SecretStr = SecretStr("")
    smtp_auth_required: bool = False
    trusted_authserv_id: str = ""
    trusted_authserv_fields: int = Field(default=1, ge=1, le=5)
    # Sender verification (DKIM); see .env.example
    dkim_keys_file: Path | None = None
    dkim_dns: bool = True
    dkim_dns_server: str = ""
    dkim_dns_timeout: float = Field(default=5.0, gt=0, le=60)
    trust_all_senders: bool = False
    # Floods: more new tickets than this from one sender / one customer within the window are
    # added to the sender's newest open ticket instead; near-identical mail within its window too.
    flood_window_minutes: int = Field(default=60, ge=1)
    flood_max_per_sender: int = Field(default=3, ge=1)
    flood_max_per_customer: int = Field(default=20, ge=1)
    flood_mirror_max: int = Field(default=5, ge=0)
    duplicate_window_minutes: int = Field(default=10, ge=0)
    smtp_timeout_seconds: float = Field(default=300.0, gt=0)
    smtp_data_max_seconds: float = Field(default=3600.0, gt=0)
    smtp_max_connections_per_client: int = Field(default=50, ge=1)
    smtp_max_sessions: int = Field(default=200, ge=1)
    smtp_max_recipients: int = Field(default=50, ge=1)
    # Mail out
    mail_relay_url: SecretStr = SecretStr("")
    outbox_dir: Path = Path("var/outbox")
    mail_from_name: str = "NetTask Support"
    relay_backoff_seconds: float = Field(default=30.0, gt=0)
    relay_backoff_max_seconds: float = Field(default=600.0, gt=0)
    auto_reply_limit_per_day: int = Field(default=10, ge=0)
    followup_reopen_days: int = Field(default=14, ge=0)
    processing_max_attempts: int = Field(default=5, ge=1)
    # Slack
    slack_bot_token: SecretStr = SecretStr("")
    slack_signing_secret: SecretStr = SecretStr("")
    slack_app_token: SecretStr = SecretStr("")
    slack_api_url: str = "https://slack.com/api/"
    slack_triage_channel: str = ""
    slack_managers_channel: str = ""
    slack_agents: str = ""
    slack_note_prefix: str = Field(default="note:", min_length=1)
    slack_outbox_file: Path = Path("var/slack-outbox.jsonl")
    slack_backoff_seconds: float = Field(default=5.0, gt=0)
    slack_backoff_max_seconds: float = Field(default=60.0, gt=0)
    slack_token_retry_seconds: float = Field(default=300.0, gt=0)
    slack_post_interval_seconds: float = Field(default=1.0, ge=0)
    outbox_max_age_seconds: float = Field(default=600.0, gt=0)
    slack_user_cache_seconds: float = Field(default=600.0, ge=0)
    managers_email: str = ""
    # Deadline reminders (bot/scheduler.py); see .env.example
    reminders_enabled: bool = True
    managers_language: str = Field(default="de", pattern="^(de|en)$")
    reminder_late_seconds: float = Field(default=5.0, ge=0)
    reminder_refresh_seconds: float = Field(default=5.0, gt=0, le=60)
    reminder_leader_retry_seconds: float = Field(default=3.0, gt=0, le=10)
    reminder_max_attempts: int = Field(default=5, ge=1)
    reminder_retry_seconds: float = Field(default=30.0, gt=0)
    instance_name: str = ""
    digest_time: str = Field(default="", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^$")
    # Data protection (bot/retention.py, bot/people.py, bot/backup.py); see .env.example
    retention_raw_days: int = Field(default=90, ge=1)
    retention_time: str = Field(default="03:30", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    retention_batch: int = Field(default=500, ge=1, le=10_000)
    pg_bin_dir: Path | None = None
    # The web chat (bot/intake/web/); see .env.example and docs/webchat-protocol.md
    webchat_origins: str = "http://127.0.0.1:8080,http://localhost:8080"
    webchat_identity_secret: SecretStr = SecretStr("")
    webchat_identity_max_seconds: int = Field(default=86_400, ge=60)
    webchat_max_chars: int = Field(default=4000, ge=1, le=12_000)
    webchat_visitor_per_minute: int = Field(default=20, ge=1)
    webchat_address_per_hour: int = Field(default=5, ge=1)
    webchat_new_visitors_per_hour: int = Field(default=30, ge=1)
    webchat_code_minutes: int = Field(default=10, ge=1, le=60)
    webchat_push_seconds: float = Field(default=0.5, gt=0, le=10)
    webchat_mail_after_minutes: int = Field(default=15, ge=1)

    @property
    def support_mailboxes(self) -> tuple[str, ...]:
        """The support addresses, lower-case; the first one is our From address."""
        boxes = tuple(a.strip().lower() for a in self.support_addresses.split(",") if a.strip())
        if not boxes:
            raise ConfigError("SUPPORT_ADDRESSES names no address")
        return boxes

    @property
    def webchat_origin_set(self) -> frozenset[str]:
        """The page origins allowed to open the chat's WebSocket (exact scheme://host[:port])."""
        return frozenset(o.strip().rstrip("/").lower()
                         for o in self.webchat_origins.split(",") if o.strip())

    @property
    def slack_mode(self) -> str:
        """"web-api" with a bot token; else "outbox-file": Slack calls go to SLACK_OUTBOX_FILE."""
        return "web-api" if self.slack_bot_token.get_secret_value() else "outbox-file"

    @property
    def slack_agent_ids(self) -> frozenset[str]:
        """The Slack user ids in SLACK_AGENTS."""
        return frozenset(a.strip() for a in self.slack_agents.split(",") if a.strip())

    @property
    def auth_users(self) -> dict[str, str]:
        """SMTP AUTH logins from SMTP_AUTH_USERS ("user:password,user2:password2")."""
        users: dict[str, str] = {}
        for pair in self.smtp_auth_users.get_secret_value().split(","):
            if pair.strip():
                user, sep, password = pair.strip().partition(":")
                if not sep or not user:
                    raise ConfigError("SMTP_AUTH_USERS must be comma-separated user:password")
                users[user] = password
        return users


def load_policy(path: Path) -> Policy:
    """Read and validate the policy file; PolicyError says what is wrong and where."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"cannot read policy file {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise PolicyError(f"policy file {path} is not UTF-8 text: {exc}") from exc
    return parse_policy(text, source=f"policy file {path}")
