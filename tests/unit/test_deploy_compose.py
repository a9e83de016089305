"""deploy/compose.yaml against the real command line and settings (no Docker engine runs here):
every f5serve command parses with the CLI's own options, every F5SERVE_* variable is a setting
with a valid value, and the services agree with each other (credentials, bucket, worker URLs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import typer
import yaml

from f5serve.cli import app
from f5serve.core.settings import Settings

COMPOSE = Path(__file__).parents[2] / "deploy" / "compose.yaml"


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    compose = yaml.safe_load(COMPOSE.read_text())
    return compose["services"]  # type: ignore[no-any-return]


def f5serve_services(services: dict[str, Any]) -> dict[str, Any]:
    return {n: s for n, s in services.items() if s.get("command", [""])[0] == "f5serve"}


def test_every_command_parses_with_the_real_cli(services: dict[str, Any]) -> None:
    cli = typer.main.get_command(app)
    commands = {}
    for name, service in f5serve_services(services).items():
        _, *words = service["command"]
        subcommand: Any = cli
        while hasattr(subcommand, "commands"):  # a group: f5serve db upgrade
            word, *words = words
            subcommand = subcommand.commands[word]
        context = subcommand.make_context(subcommand.name, list(words))  # unknown flags raise
        commands[name] = (subcommand.name, context.params)
    assert commands["migrate"][0] == "upgrade"
    assert commands["api"][0] == "serve" and commands["api"][1]["run_worker"] is False
    workers = [n for n, (command, _) in commands.items() if command == "worker"]
    assert len(workers) >= 2
    for name in workers:
        params = commands[name][1]
        assert params["models"] and params["concurrency"] >= 1
        url = urlparse(params["advertise_url"])
        assert (url.hostname, url.port) == (name, int(params["port"]))  # reachable by its name


def test_every_variable_is_a_setting_with_a_valid_value(
    services: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for service in f5serve_services(services).values():
        variables = {k: str(v) for k, v in service["environment"].items()}
        known = {f"F5SERVE_{name.upper()}" for name in Settings.model_fields}
        assert set(variables) <= known, set(variables) - known
        for key, value in variables.items():
            monkeypatch.setenv(key, value)
        settings = Settings(_env_file=None)  # type: ignore[call-arg]
        assert settings.database_url.startswith("postgresql://")
        assert settings.storage_url.startswith("s3://")


def test_the_services_agree_with_each_other(services: dict[str, Any]) -> None:
    env = services["api"]["environment"]
    database = urlparse(env["F5SERVE_DATABASE_URL"])
    postgres = services["postgres"]["environment"]
    assert database.hostname == "postgres" and database.username == postgres["POSTGRES_USER"]
    assert database.password == postgres["POSTGRES_PASSWORD"]
    assert database.path == "/" + postgres["POSTGRES_DB"]
    minio = services["minio"]["environment"]
    assert env["F5SERVE_STORAGE_ACCESS_KEY_ID"] == minio["MINIO_ROOT_USER"]
    assert env["F5SERVE_STORAGE_SECRET_ACCESS_KEY"] == minio["MINIO_ROOT_PASSWORD"]
    bucket = urlparse(env["F5SERVE_STORAGE_URL"]).hostname
    assert f"mb --ignore-existing local/{bucket}" in " ".join(services["minio-bucket"]["command"])
    for name, service in f5serve_services(services).items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services and dependency != name
