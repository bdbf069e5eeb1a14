"""The one typed settings object, read from `PLANNER_*` environment variables (and `.env`).

Built once by the entry point (`load_settings()`) and passed down; nothing reads the environment
at import time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from planner_jobs.errors import ConfigurationError

# Development defaults: good enough on a laptop, refused when PLANNER_ENV=production.
DEV_JWT_SECRET = "development-only-jwt-secret-refused-in-production"  # noqa: S105 (public default)
DEV_SIGNING_SECRET = "development-only-signing-secret-refused-in-production"  # noqa: S105
MIN_SECRET_BYTES = 32  # RFC 7518 §3.2: an HS256 key has at least as many bits as the hash
DEV_VAPID_SUBJECT = "mailto:admin@localhost"

# The public push services browsers subscribe to: FCM (Chrome, Edge on Android, Opera),
# Mozilla autopush (Firefox), Apple (Safari) and WNS (Edge on Windows).
DEFAULT_PUSH_ALLOWED_HOSTS = (
    "fcm.googleapis.com",
    "android.googleapis.com",
    "updates.push.services.mozilla.com",
    "*.push.apple.com",
    "*.notify.windows.com",
)

MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # SigV4 presigned URLs cannot live longer
DEV_EMAIL_FROM = "Proactive Planner <no-reply@localhost>"


@dataclass(frozen=True)
class SmtpServer:
    """Where e-mail goes (PLANNER_SMTP_URL): `smtp://[user:password@]host[:port]`, STARTTLS when
    the server offers it (`?starttls=require` to insist), or `smtps://` (TLS from the start)."""

    host: str
    port: int
    tls: bool  # TLS from the start (smtps)
    starttls: bool | None  # True: required; None: when offered
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, url: str) -> SmtpServer:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("must be smtp://[user:password@]host[:port] or smtps://...")
        try:
            port = parts.port or (465 if parts.scheme == "smtps" else 25)
        except ValueError:
            raise ValueError("the port must be a number from 1 to 65535") from None
        if parts.path not in ("", "/") or parts.fragment:
            raise ValueError("must name a server only, not a path")
        options = parse_qs(parts.query, keep_blank_values=True)
        if parts.query and (options != {"starttls": ["require"]} or parts.scheme == "smtps"):
            raise ValueError("the only option is ?starttls=require, of smtp:// URLs")
        return cls(
            host=parts.hostname,
            port=port,
            tls=parts.scheme == "smtps",
            starttls=True if options else None,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )


class Settings(BaseSettings):
    """Every knob of planner-jobs; see the contract's settings table for the meaning of each."""

    model_config = SettingsConfigDict(
        env_prefix="PLANNER_",
        env_file=".env",
        extra="ignore",
        frozen=True,
    )

    database_url: str | None = None
    # Set when `database_url` is PgBouncer in transaction pooling mode: the same database, direct,
    # for what holds a session (the workers' LISTEN, migrations).
    direct_database_url: str | None = None
    data_dir: Path = Path("var")
    env: Literal["development", "production"] = "development"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    public_url: str = "http://127.0.0.1:8000"
    jwt_secret: SecretStr = SecretStr(DEV_JWT_SECRET)
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    signing_secret: SecretStr = SecretStr(DEV_SIGNING_SECRET)
    storage_url: str | None = None
    s3_endpoint_url: str | None = None
    export_url_ttl: int = Field(default=900, ge=1, le=MAX_PRESIGN_SECONDS)
    export_retention_days: int = Field(default=7, ge=1)
    vapid_private_key: SecretStr | None = None
    vapid_subject: str = DEV_VAPID_SUBJECT
    push_allowed_hosts: Annotated[tuple[str, ...], NoDecode] = DEFAULT_PUSH_ALLOWED_HOSTS
    push_ttl: int = Field(default=86400, ge=0, le=28 * 24 * 3600)
    streak_threshold: int = Field(default=75, ge=1, le=100)
    freeze_every: int = Field(default=7, ge=1, le=366)
    freeze_max: int = Field(default=2, ge=0, le=100)
    reminder_grace: int = Field(default=900, ge=0)
    stalled_after: int = Field(default=60, ge=3)
    service_token: SecretStr | None = None
    admin_password: SecretStr | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] | None = None  # None: text on a terminal, else JSON
    app_url: str | None = None
    smtp_url: SecretStr | None = None  # may hold the mail server's password
    email_from: str | None = None
    export_email: Literal["always", "no_push", "never"] = "no_push"

    @field_validator("log_format", mode="before")
    @classmethod
    def _empty_format_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("service_token", "admin_password", "smtp_url", "email_from", mode="before")
    @classmethod
    def _empty_token_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("service_token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"must be at least {MIN_SECRET_BYTES} bytes long")
        return value

    @field_validator(
        "database_url",
        "direct_database_url",
        "jwt_audience",
        "jwt_issuer",
        "s3_endpoint_url",
        "storage_url",
        "app_url",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("database_url", "direct_database_url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(
            ("postgresql://", "postgres://", "postgresql+psycopg://")
        ):
            raise ValueError("must be a postgresql:// URL")
        return value

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().absolute()

    @field_validator("public_url")
    @classmethod
    def _http_base(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("app_url")
    @classmethod
    def _web_app_base(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if (
            parts.scheme not in ("http", "https")
            or not parts.netloc
            or parts.query
            or parts.fragment
        ):
            raise ValueError(
                "must be the web app's base URL, https://host[/path] (http: in development)"
            )
        return value.rstrip("/")

    @field_validator("smtp_url")
    @classmethod
    def _mail_server(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            SmtpServer.parse(value.get_secret_value())  # a ValueError says what is wrong
        return value

    @field_validator("email_from")
    @classmethod
    def _an_address(cls, value: str | None) -> str | None:
        if value is not None and "@" not in parseaddr(value)[1]:
            raise ValueError("must be an address, e.g. Proactive Planner <no-reply@example.com>")
        return value

    @field_validator("storage_url")
    @classmethod
    def _storage_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("file://", "s3://")):
            raise ValueError("must be file:///path or s3://bucket/prefix")
        return value

    @field_validator("vapid_subject")
    @classmethod
    def _vapid_contact(cls, value: str) -> str:
        if not value.startswith(("mailto:", "https://")):
            raise ValueError("must be a mailto: or https: URL")
        return value

    @field_validator("push_allowed_hosts", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(host.strip().lower() for host in value.split(",") if host.strip())
        return value

    @model_validator(mode="after")
    def _direct_url_beside_a_pooled_one(self) -> Settings:
        if self.direct_database_url is not None and self.database_url is None:
            raise ValueError(
                "PLANNER_DIRECT_DATABASE_URL is set without PLANNER_DATABASE_URL: it is the"
                " direct connection beside a PgBouncer one"
            )
        return self

    @property
    def pooled(self) -> bool:
        """`database_url` goes through PgBouncer in transaction pooling mode."""
        return self.direct_database_url is not None

    @model_validator(mode="after")
    def _no_development_secrets_in_production(self) -> Settings:
        if self.env == "production" and (problems := self.production_problems()):
            raise ValueError("PLANNER_ENV=production refuses to start: " + "; ".join(problems))
        return self

    def production_problems(self) -> list[str]:
        """Every setting left at a development default, empty or too weak for production."""
        problems = []
        for variable, secret, development in (
            ("PLANNER_JWT_SECRET", self.jwt_secret, DEV_JWT_SECRET),
            ("PLANNER_SIGNING_SECRET", self.signing_secret, DEV_SIGNING_SECRET),
        ):
            value = secret.get_secret_value()
            if value in ("", development):
                problems.append(f"{variable} is empty or left at its development default")
            elif len(value.encode()) < MIN_SECRET_BYTES:
                problems.append(f"{variable} must be at least {MIN_SECRET_BYTES} bytes long")
        password = self.admin_password
        if password is not None and len(password.get_secret_value().encode()) < MIN_SECRET_BYTES:
            # HTTP Basic offers no throttling of guesses: only length keeps it unguessable.
            problems.append(
                f"PLANNER_ADMIN_PASSWORD must be at least {MIN_SECRET_BYTES} bytes long"
            )
        if self.vapid_private_key is None or not self.vapid_private_key.get_secret_value():
            problems.append("PLANNER_VAPID_PRIVATE_KEY must be set")
        if self.smtp_url is not None and self.email_from is None:
            problems.append("PLANNER_EMAIL_FROM must be set with PLANNER_SMTP_URL")
        if self.app_url is not None and not self.app_url.startswith("https://"):
            problems.append("PLANNER_APP_URL must be an https: URL")
        if self.vapid_subject == DEV_VAPID_SUBJECT:
            problems.append("PLANNER_VAPID_SUBJECT is left at its development default")
        return problems

    @property
    def smtp_server(self) -> SmtpServer | None:
        """The mail server of PLANNER_SMTP_URL (None: no e-mail is sent)."""
        return None if self.smtp_url is None else SmtpServer.parse(self.smtp_url.get_secret_value())

    @property
    def sender(self) -> str:
        """The `From:` of every e-mail (PLANNER_EMAIL_FROM; production requires it)."""
        return self.email_from or DEV_EMAIL_FROM

    @property
    def storage_location(self) -> str:
        """Where export files go: `PLANNER_STORAGE_URL`, else a folder of the data directory."""
        return self.storage_url or (self.data_dir / "exports").as_uri()

    @property
    def embedded_database_dir(self) -> Path:
        return self.data_dir / "pg"


def load_settings(**overrides: object) -> Settings:
    """Read and validate the settings once; a bad value becomes a one-line `ConfigurationError`."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigurationError(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> str:
    """`PLANNER_PORT: Input should be ...; PLANNER_ENV: ...` from a pydantic error."""
    parts = []
    for error in exc.errors():
        message = error["msg"].removeprefix("Value error, ")
        if error["loc"]:
            parts.append(f"PLANNER_{str(error['loc'][0]).upper()}: {message}")
        else:
            parts.append(message)
    return "invalid settings: " + "; ".join(parts)
