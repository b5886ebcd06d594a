from pathlib import Path

import pytest

from switchboard.settings import Settings, SettingsError, load_settings, read_dotenv


def test_defaults_work_without_any_environment(tmp_path: Path) -> None:
    settings = load_settings({}, dotenv=tmp_path / "none")
    assert settings.port == 8000
    assert settings.resolved_database_url == "sqlite:///var/switchboard.sqlite3"
    assert settings.upstream_url_list == ["http://127.0.0.1:8001/v1"]


def test_values_are_converted_from_strings(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "SWITCHBOARD_PORT": "9100",
            "SWITCHBOARD_LOG_PROMPTS": "true",
            "SWITCHBOARD_UPSTREAM_URLS": "http://a:1/v1/, http://b:2/v1",
        },
        dotenv=tmp_path / "none",
    )
    assert settings.port == 9100
    assert settings.log_prompts is True
    assert settings.upstream_url_list == ["http://a:1/v1", "http://b:2/v1"]


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SWITCHBOARD_PORT": "eighty"}, "SWITCHBOARD_PORT='eighty'"),
        ({"SWITCHBOARD_PORT": "70000"}, "SWITCHBOARD_PORT"),
        ({"SWITCHBOARD_ENVIRONMENT": "prod"}, "SWITCHBOARD_ENVIRONMENT"),
        ({"SWITCHBOARD_DATABASE_URL": "mysql://x"}, "SWITCHBOARD_DATABASE_URL"),
        ({"SWITCHBOARD_UPSTREAM_URLS": "ftp://x"}, "SWITCHBOARD_UPSTREAM_URLS"),
        ({"SWITCHBOARD_UPSTREAM_URLS": " , "}, "SWITCHBOARD_UPSTREAM_URLS"),
        ({"SWITCHBOARD_MAX_BODY_BYTES": "0"}, "SWITCHBOARD_MAX_BODY_BYTES"),
        ({"SWITCHBOARD_UPSTREAM_TOTAL_TIMEOUT": "-1"}, "SWITCHBOARD_UPSTREAM_TOTAL_TIMEOUT"),
        ({"SWITCHBOARD_NO_SUCH_THING": "1"}, "SWITCHBOARD_NO_SUCH_THING"),
        ({"SWITCHBOARD_ENVIRONMENT": "production"}, "SWITCHBOARD_SECRET_KEY"),
        (
            {"SWITCHBOARD_ENVIRONMENT": "production", "SWITCHBOARD_SECRET_KEY": "changethis"},
            "SWITCHBOARD_SECRET_KEY",
        ),
    ],
)
def test_a_wrong_value_fails_naming_the_variable(
    env: dict[str, str], named: str, tmp_path: Path
) -> None:
    with pytest.raises(SettingsError, match=named):
        load_settings(env, dotenv=tmp_path / "none")


PRODUCTION = {
    "SWITCHBOARD_ENVIRONMENT": "production",
    "SWITCHBOARD_SECRET_KEY": "a" * 64,
    "SWITCHBOARD_METRICS_TOKEN": "m" * 32,
    "SWITCHBOARD_PUBLIC_URL": "https://switchboard.example",
}


def test_production_accepts_a_real_secret(tmp_path: Path) -> None:
    settings = load_settings(PRODUCTION, dotenv=tmp_path / "none")
    assert settings.environment == "production"
    # 32 bytes, not characters: 16 two-byte characters are enough
    assert load_settings({**PRODUCTION, "SWITCHBOARD_SECRET_KEY": "é" * 16}, dotenv=tmp_path)


@pytest.mark.parametrize(
    "secret", ["a" * 31, "é" * 15 + "a", "dev-insecure-secret-change-me", "changethis", ""]
)
def test_production_refuses_a_short_or_example_secret(secret: str, tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="SWITCHBOARD_SECRET_KEY") as refused:
        load_settings({**PRODUCTION, "SWITCHBOARD_SECRET_KEY": secret}, dotenv=tmp_path / "none")
    assert "32 bytes" in str(refused.value)
    assert "openssl rand -hex 32" in str(refused.value)


def test_production_refuses_to_run_without_a_metrics_token(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="SWITCHBOARD_METRICS_TOKEN"):
        load_settings({**PRODUCTION, "SWITCHBOARD_METRICS_TOKEN": ""}, dotenv=tmp_path / "none")


@pytest.mark.parametrize("environment", ["development", "test"])
def test_development_and_test_keep_the_example_secret_and_no_token(
    environment: str, tmp_path: Path
) -> None:
    settings = load_settings({"SWITCHBOARD_ENVIRONMENT": environment}, dotenv=tmp_path / "none")
    assert (settings.secret_key, settings.metrics_token) == ("dev-insecure-secret-change-me", "")


def test_dotenv_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        "# comment\nSWITCHBOARD_PORT=9001\nexport SWITCHBOARD_HOST='0.0.0.0'\n"
        'SWITCHBOARD_DEFAULT_MODEL="m"\nnot a line\n'
    )
    assert read_dotenv(dotenv)["SWITCHBOARD_HOST"] == "0.0.0.0"
    settings = load_settings({"SWITCHBOARD_PORT": "9002"}, dotenv=dotenv)
    assert (settings.port, settings.host, settings.default_model) == (9002, "0.0.0.0", "m")


def test_every_setting_is_documented_in_env_example() -> None:
    example = Path(__file__).resolve().parents[2] / ".env.example"
    documented = set(read_dotenv(example)) | {
        line.lstrip("# ").split("=")[0]
        for line in example.read_text().splitlines()
        if line.startswith("# SWITCHBOARD_")
    }
    fields = {f"SWITCHBOARD_{name.upper()}" for name in Settings.__struct_fields__}
    assert fields - documented == set(), "add these to .env.example"
    assert documented - fields == set(), "remove these from .env.example"


@pytest.mark.parametrize("public_url", ["", "http://switchboard.example"])
def test_production_needs_an_https_public_url(public_url: str, tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="SWITCHBOARD_PUBLIC_URL"):
        load_settings({**PRODUCTION, "SWITCHBOARD_PUBLIC_URL": public_url}, dotenv=tmp_path / "x")


def test_several_workers_need_redis(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="SWITCHBOARD_WORKERS") as refused:
        load_settings({"SWITCHBOARD_WORKERS": "2"}, dotenv=tmp_path / "none")
    assert "SWITCHBOARD_REDIS_URL" in str(refused.value)
    shared = {"SWITCHBOARD_WORKERS": "2", "SWITCHBOARD_REDIS_URL": "redis://127.0.0.1:6379/0"}
    assert load_settings(shared, dotenv=tmp_path / "none").workers == 2


@pytest.mark.parametrize("proxies", ["10.0.0.0/33", "not-an-address", "10.0.0.1,,bad"])
def test_trusted_proxies_must_be_addresses_or_networks(proxies: str, tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="SWITCHBOARD_TRUSTED_PROXIES"):
        load_settings({"SWITCHBOARD_TRUSTED_PROXIES": proxies}, dotenv=tmp_path / "none")


def test_a_file_variable_gives_the_setting_its_stripped_content(tmp_path: Path) -> None:
    secret = tmp_path / "session_secret"
    secret.write_text("s" * 40 + "\n")
    password = tmp_path / "postgres_password"
    password.write_text("p@ss/w:rd\n")  # pragma: allowlist secret
    env = {k: v for k, v in PRODUCTION.items() if k != "SWITCHBOARD_SECRET_KEY"}
    settings = load_settings(
        {
            **env,
            "SWITCHBOARD_SECRET_KEY_FILE": str(secret),
            "SWITCHBOARD_DATABASE_URL": "postgresql://switchboard@db:5432/switchboard",
            "SWITCHBOARD_DATABASE_PASSWORD_FILE": str(password),
        },
        dotenv=tmp_path / "none",
    )
    assert settings.secret_key == "s" * 40
    assert settings.database_password == "p@ss/w:rd"  # pragma: allowlist secret
    # percent-encoded into the URL the engine gets; the URL setting itself holds no secret
    assert settings.resolved_database_url == (
        "postgresql://switchboard:p%40ss%2Fw%3Ard@db:5432/switchboard"  # pragma: allowlist secret
    )
    assert "p@ss" not in settings.database_url


KEY = "SWITCHBOARD_SECRET_KEY"
KEY_FILE = f"{KEY}_FILE"
DB_VAR = "SWITCHBOARD_DATABASE_" + "PASSWORD"
URL_WITH_ONE = "postgresql://u:other@db/x"  # pragma: allowlist secret


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({KEY_FILE: "/nonexistent/x"}, KEY_FILE),
        ({KEY_FILE: "EMPTY"}, KEY_FILE),
        ({KEY_FILE: "FULL", KEY: "x" * 40}, f"{KEY} and {KEY_FILE}"),
        ({"SWITCHBOARD_NO_SUCH_THING_FILE": "FULL"}, "SWITCHBOARD_NO_SUCH_THING_FILE"),
        ({DB_VAR: "x" * 8}, DB_VAR),  # SQLite has none
        ({DB_VAR: "x" * 8, "SWITCHBOARD_DATABASE_URL": URL_WITH_ONE}, DB_VAR),
    ],
)
def test_a_file_variable_that_cannot_be_used_fails_naming_it(
    env: dict[str, str], named: str, tmp_path: Path
) -> None:
    (tmp_path / "empty").write_text("\n")
    (tmp_path / "full").write_text("f" * 40)
    paths = {"EMPTY": str(tmp_path / "empty"), "FULL": str(tmp_path / "full")}
    env = {key: paths.get(value, value) for key, value in env.items()}
    with pytest.raises(SettingsError, match=named):
        load_settings(env, dotenv=tmp_path / "none")


def test_production_refuses_an_example_secret_from_a_file(tmp_path: Path) -> None:
    example = tmp_path / "session_secret"
    example.write_text("changethis\n")
    env = {k: v for k, v in PRODUCTION.items() if k != "SWITCHBOARD_SECRET_KEY"}
    with pytest.raises(SettingsError, match="SWITCHBOARD_SECRET_KEY"):
        load_settings({**env, "SWITCHBOARD_SECRET_KEY_FILE": str(example)}, dotenv=tmp_path / "n")
