"""Deployment files agree with the code: commands exist, health paths are routes, settings are documented.

Docker and Railway cannot run here, so these check what can go wrong without them: a start
command that is not a `luster` command, a compose stack whose services disagree on a password
or a bucket name, a setting missing from the deployment guide.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
from urllib.parse import urlsplit

import pytest
import yaml

from luster_app.api import create_api
from luster_app.cli import build_parser
from luster_app.config import Settings
from luster_app.migrations import ROOT
from luster_app.services.stripe_events import HANDLERS as STRIPE_EVENT_HANDLERS

COMPOSE = yaml.safe_load((ROOT / "infra" / "docker-compose.yml").read_text())
RAILWAY_WEB = json.loads((ROOT / "railway.json").read_text())
RAILWAY_WORKER = json.loads((ROOT / "railway.worker.json").read_text())
DOCKERFILE = (ROOT / "Dockerfile").read_text()
GUIDE = (ROOT / "docs" / "DEPLOY.md").read_text()


def _luster_commands(command: str | list[str]) -> list[list[str]]:
    """The `luster …` argument lists a start command runs (`sh -c 'a && b'` is two)."""
    if isinstance(command, list):
        command = command[2] if command[:2] == ["sh", "-c"] else shlex.join(command)
    return [shlex.split(part) for part in command.split("&&")]


def _dockerfile_cmd() -> list[str]:
    return json.loads(re.search(r"^CMD (\[.*\])$", DOCKERFILE, re.M).group(1))


DEPLOY_COMMANDS = {
    "railway web start": RAILWAY_WEB["deploy"]["startCommand"],
    "railway web pre-deploy": RAILWAY_WEB["deploy"]["preDeployCommand"][0],
    "railway worker start": RAILWAY_WORKER["deploy"]["startCommand"],
    "compose web": COMPOSE["services"]["web"]["command"],
    "compose worker": COMPOSE["services"]["worker"]["command"],
    "dockerfile default": _dockerfile_cmd(),
}


def _parses(argv: list[str]) -> bool:
    with contextlib.redirect_stderr(io.StringIO()), contextlib.suppress(SystemExit):
        build_parser().parse_args(argv)
        return True
    return False


def _command_cases() -> list[pytest.param]:
    cases = []
    for where, command in DEPLOY_COMMANDS.items():
        for argv in _luster_commands(command):
            cases.append(pytest.param(argv, id=f"{where}: {shlex.join(argv)}"))
    return cases


@pytest.mark.parametrize("argv", _command_cases())
def test_every_deployment_command_is_a_luster_command(argv: list[str]) -> None:
    assert argv[0] == "luster"
    assert _parses(argv[1:])


def test_web_serves_without_a_worker_and_the_worker_service_runs_one() -> None:
    assert _luster_commands(RAILWAY_WEB["deploy"]["startCommand"]) == [["luster", "serve", "--no-worker"]]
    assert _luster_commands(RAILWAY_WEB["deploy"]["preDeployCommand"][0]) == [["luster", "migrate"]]
    assert _luster_commands(RAILWAY_WORKER["deploy"]["startCommand"]) == [["luster", "worker"]]
    assert _luster_commands(COMPOSE["services"]["web"]["command"]) == [["luster", "migrate"], ["luster", "serve", "--no-worker"]]


def test_railway_health_check_is_the_readiness_route() -> None:
    paths = create_api().openapi()["paths"]
    assert RAILWAY_WEB["deploy"]["healthcheckPath"] == "/api/ready"
    assert "get" in paths["/api/ready"]
    for config in (RAILWAY_WEB, RAILWAY_WORKER):
        assert config["build"] == {"builder": "DOCKERFILE", "dockerfilePath": "Dockerfile"}


def test_dockerfile_builds_one_image_with_the_frontend() -> None:
    assert re.search(r"^FROM python:3\.11-slim$", DOCKERFILE, re.M)
    assert "npm install -g" in DOCKERFILE and "bun@1" in DOCKERFILE
    assert "reflex export --frontend-only" in DOCKERFILE
    assert _dockerfile_cmd() == ["luster", "serve", "--no-worker"]
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".web", ".env", "data"} <= set(ignored)


def test_compose_services_agree_on_database_and_bucket() -> None:
    services = COMPOSE["services"]
    assert {"postgres", "minio", "minio-init", "web", "worker"} <= set(services)
    env = services["web"]["environment"]
    assert services["worker"]["environment"] == env
    db = urlsplit(env["DATABASE_URL"])
    assert db.scheme == "postgresql+psycopg" and db.hostname == "postgres"
    pg = services["postgres"]["environment"]
    assert (db.username, db.password, db.path.lstrip("/")) == (pg["POSTGRES_USER"], pg["POSTGRES_PASSWORD"], pg["POSTGRES_DB"])
    minio = services["minio"]["environment"]
    assert (env["S3_ACCESS_KEY_ID"], env["S3_SECRET_ACCESS_KEY"]) == (minio["MINIO_ROOT_USER"], minio["MINIO_ROOT_PASSWORD"])
    assert urlsplit(env["S3_ENDPOINT"]).hostname == "minio"
    init_script = " ".join(services["minio-init"]["command"])
    assert f"mc mb --ignore-existing local/{env['S3_BUCKET']}" in init_script
    assert services["web"]["depends_on"]["minio-init"]["condition"] == "service_completed_successfully"
    assert services["web"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_compose_stack_passes_the_settings_validation() -> None:
    # The stack runs embedded sign-in and payments, so it must not claim to be production.
    env = COMPOSE["services"]["web"]["environment"]
    settings = Settings(_env_file=None, **{k.lower(): v for k, v in env.items() if "${" not in v})
    assert not settings.is_production
    assert settings.uses_s3 and settings.database_url.startswith("postgresql+psycopg://")


def test_guide_documents_every_setting() -> None:
    missing = [name.upper() for name in Settings.model_fields if f"`{name.upper()}`" not in GUIDE]
    assert not missing, f"docs/DEPLOY.md does not document: {missing}"


def test_guide_has_the_stripe_webhook_the_supabase_link_and_the_r2_cors_rule() -> None:
    assert "/api/webhooks/stripe" in GUIDE
    undocumented = [event for event in STRIPE_EVENT_HANDLERS if f"`{event}`" not in GUIDE]
    assert not undocumented, f"docs/DEPLOY.md does not subscribe the webhook to: {undocumented}"
    assert "{{ .SiteURL }}/auth/confirm?token_hash={{ .TokenHash }}&type=magiclink" in GUIDE
    cors_block = re.search(r"```json\n\s*(\[\s*\{.*?\])\s*```", GUIDE, re.S).group(1)
    [rule] = json.loads(cors_block)
    assert rule["AllowedMethods"] == ["PUT"]
    assert rule["AllowedHeaders"] == ["content-type"]
    assert all(o.startswith("https://") and "*" not in o for o in rule["AllowedOrigins"])
