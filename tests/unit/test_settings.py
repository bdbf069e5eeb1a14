from __future__ import annotations

from pathlib import Path

import pytest

from planner_jobs.errors import ConfigurationError
from planner_jobs.settings import DEFAULT_PUSH_ALLOWED_HOSTS, load_settings

PRODUCTION_READY = {
    "PLANNER_ENV": "production",
    "PLANNER_JWT_SECRET": "a real secret that is long enough for hs256",
    "PLANNER_SIGNING_SECRET": "another real secret, also long enough",
    "PLANNER_VAPID_PRIVATE_KEY": "a key",
    "PLANNER_VAPID_SUBJECT": "mailto:ops@example.com",
}


def test_defaults_match_the_contract(tmp_path: Path) -> None:
    settings = load_settings()

    assert settings.database_url is None
    assert settings.data_dir == tmp_path / "var"
    assert settings.embedded_database_dir == tmp_path / "var" / "pg"
    assert settings.env == "development"
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.public_url == "http://127.0.0.1:8000"
    assert settings.storage_location == (tmp_path / "var" / "exports").as_uri()
    assert settings.export_url_ttl == 900
    assert settings.export_retention_days == 7
    assert settings.vapid_subject == "mailto:admin@localhost"
    assert settings.push_allowed_hosts == DEFAULT_PUSH_ALLOWED_HOSTS
    assert settings.push_ttl == 86400
    assert settings.streak_threshold == 75
    assert settings.reminder_grace == 900


def test_values_come_from_planner_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANNER_PORT", "9001")
    monkeypatch.setenv("PLANNER_PUSH_ALLOWED_HOSTS", " push.example.com, 127.0.0.1:8443 ,")
    monkeypatch.setenv("PLANNER_PUBLIC_URL", "https://jobs.example.com/")
    monkeypatch.setenv("PLANNER_STORAGE_URL", "s3://bucket/exports")
    monkeypatch.setenv("PLANNER_JWT_AUDIENCE", "")

    settings = load_settings()

    assert settings.port == 9001
    assert settings.push_allowed_hosts == ("push.example.com", "127.0.0.1:8443")
    assert settings.public_url == "https://jobs.example.com"
    assert settings.storage_location == "s3://bucket/exports"
    assert settings.jwt_audience is None


def test_a_dotenv_file_supplies_values(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("PLANNER_STREAK_THRESHOLD=80\n")

    assert load_settings().streak_threshold == 80


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PLANNER_PORT", "eighty"),
        ("PLANNER_PORT", "70000"),
        ("PLANNER_ENV", "staging"),
        ("PLANNER_DATABASE_URL", "mysql://localhost/db"),
        ("PLANNER_STORAGE_URL", "ftp://example.com"),
        ("PLANNER_STREAK_THRESHOLD", "0"),
        ("PLANNER_STREAK_THRESHOLD", "101"),
        ("PLANNER_EXPORT_URL_TTL", "0"),
        ("PLANNER_EXPORT_URL_TTL", "604801"),
        ("PLANNER_VAPID_SUBJECT", "admin@example.com"),
        ("PLANNER_PUBLIC_URL", "jobs.example.com"),
        ("PLANNER_APP_URL", "planner.example"),
        ("PLANNER_APP_URL", "ftp://planner.example"),
        ("PLANNER_APP_URL", "https://planner.example/?x=1"),
        ("PLANNER_SMTP_URL", "mail.example:25"),
        ("PLANNER_SMTP_URL", "smtp://:25"),
        ("PLANNER_SMTP_URL", "smtp://mail.example:port"),
        ("PLANNER_SMTP_URL", "smtp://mail.example?starttls=maybe"),
        ("PLANNER_SMTP_URL", "smtps://mail.example?starttls=require"),
        ("PLANNER_EMAIL_FROM", "nobody"),
        ("PLANNER_EXPORT_EMAIL", "sometimes"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)

    with pytest.raises(ConfigurationError) as error:
        load_settings()

    message = str(error.value)
    assert variable in message
    assert "\n" not in message


def test_production_starts_with_real_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable, value in PRODUCTION_READY.items():
        monkeypatch.setenv(variable, value)

    assert load_settings().env == "production"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PLANNER_JWT_SECRET", None),
        ("PLANNER_JWT_SECRET", ""),
        ("PLANNER_SIGNING_SECRET", None),
        ("PLANNER_SIGNING_SECRET", ""),
        ("PLANNER_VAPID_PRIVATE_KEY", None),
        ("PLANNER_VAPID_PRIVATE_KEY", ""),
        ("PLANNER_VAPID_SUBJECT", None),
    ],
)
def test_production_refuses_development_defaults_and_empty_secrets(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str | None
) -> None:
    for name, good in PRODUCTION_READY.items():
        monkeypatch.setenv(name, good)
    if value is None:
        monkeypatch.delenv(variable)
    else:
        monkeypatch.setenv(variable, value)

    with pytest.raises(ConfigurationError, match=variable):
        load_settings()


@pytest.mark.parametrize(
    "variable", ["PLANNER_JWT_SECRET", "PLANNER_SIGNING_SECRET", "PLANNER_ADMIN_PASSWORD"]
)
def test_production_refuses_short_secrets(monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    for name, good in PRODUCTION_READY.items():
        monkeypatch.setenv(name, good)
    monkeypatch.setenv(variable, "x" * 31)

    with pytest.raises(ConfigurationError, match=f"{variable} must be at least 32 bytes"):
        load_settings()


def test_production_names_every_problem_in_one_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANNER_ENV", "production")
    monkeypatch.setenv("PLANNER_JWT_SECRET", "abc")

    with pytest.raises(ConfigurationError) as raised:
        load_settings()

    message = str(raised.value)
    assert "\n" not in message
    for problem in (
        "PLANNER_JWT_SECRET must be at least 32 bytes",
        "PLANNER_SIGNING_SECRET is empty or left at its development default",
        "PLANNER_VAPID_PRIVATE_KEY must be set",
        "PLANNER_VAPID_SUBJECT is left at its development default",
    ):
        assert problem in message


def test_production_takes_an_admin_password_of_32_bytes_or_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, good in PRODUCTION_READY.items():
        monkeypatch.setenv(name, good)
    assert load_settings().admin_password is None  # the dashboard is off
    monkeypatch.setenv("PLANNER_ADMIN_PASSWORD", "admin")
    with pytest.raises(ConfigurationError, match="PLANNER_ADMIN_PASSWORD must be at least 32"):
        load_settings()
    monkeypatch.setenv("PLANNER_ADMIN_PASSWORD", "p" * 32)
    assert load_settings().admin_password is not None


def test_a_service_token_is_long_enough_or_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().service_token is None
    monkeypatch.setenv("PLANNER_SERVICE_TOKEN", "")
    assert load_settings().service_token is None
    monkeypatch.setenv("PLANNER_SERVICE_TOKEN", "t" * 31)
    with pytest.raises(ConfigurationError, match="PLANNER_SERVICE_TOKEN: must be at least 32"):
        load_settings()
    monkeypatch.setenv("PLANNER_SERVICE_TOKEN", "t" * 32)
    assert load_settings().service_token is not None


def test_development_accepts_its_defaults() -> None:
    assert load_settings().jwt_secret.get_secret_value()


def test_a_direct_url_goes_beside_a_pooled_one(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().pooled is False
    monkeypatch.setenv("PLANNER_DIRECT_DATABASE_URL", "postgresql://db:5432/planner")
    with pytest.raises(ConfigurationError, match="without PLANNER_DATABASE_URL"):
        load_settings()
    monkeypatch.setenv("PLANNER_DATABASE_URL", "postgresql://pgbouncer:6432/planner")
    assert load_settings().pooled is True
    monkeypatch.setenv("PLANNER_DIRECT_DATABASE_URL", "mysql://db/planner")
    with pytest.raises(ConfigurationError, match="PLANNER_DIRECT_DATABASE_URL: must be a"):
        load_settings()


def test_the_app_url_is_a_base_without_its_last_slash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANNER_APP_URL", "https://planner.example/app/")

    assert load_settings().app_url == "https://planner.example/app"


def test_production_wants_an_https_app_url_and_a_sender_beside_a_mail_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, good in PRODUCTION_READY.items():
        monkeypatch.setenv(name, good)
    monkeypatch.setenv("PLANNER_APP_URL", "http://planner.example")
    monkeypatch.setenv("PLANNER_SMTP_URL", "smtp://mail.example:587")

    with pytest.raises(ConfigurationError) as error:
        load_settings()

    assert "PLANNER_APP_URL must be an https: URL" in str(error.value)
    assert "PLANNER_EMAIL_FROM must be set with PLANNER_SMTP_URL" in str(error.value)
    monkeypatch.setenv("PLANNER_APP_URL", "https://planner.example")
    monkeypatch.setenv("PLANNER_EMAIL_FROM", "Proactive Planner <no-reply@planner.example>")
    assert load_settings().sender == "Proactive Planner <no-reply@planner.example>"


def test_the_mail_server_url_is_read_and_its_password_never_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PLANNER_SMTP_URL", "smtp://ops:p%40ss@mail.example:587?starttls=require")

    settings = load_settings()
    server = settings.smtp_server

    assert server is not None
    assert (server.host, server.port, server.tls, server.starttls) == (
        "mail.example",
        587,
        False,
        True,
    )
    assert (server.username, server.password) == ("ops", "p@ss")
    assert "p@ss" not in repr(server)
    assert "p%40ss" not in repr(settings)
    assert settings.sender == "Proactive Planner <no-reply@localhost>"  # development's
    assert settings.export_email == "no_push"


def test_a_bad_mail_server_url_is_one_line_that_does_not_repeat_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PLANNER_SMTP_URL", "smtp://ops:secret-word@mail.example:notaport")

    with pytest.raises(ConfigurationError) as error:
        load_settings()

    assert str(error.value).startswith("invalid settings: PLANNER_SMTP_URL: the port must be")
    assert "secret-word" not in str(error.value)
