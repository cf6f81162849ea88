"""LUSTER_ENV=production refuses settings meant for one laptop, and says which setting is wrong."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from luster_app.config import Settings
from luster_app.guards import UnsafeSettingsError, check_production_settings, is_placeholder, production_problems
from luster_app.migrations import ROOT

PRODUCTION = {
    "luster_env": "production",
    "app_url": "https://photos.luster.example",
    "database_url": "postgresql+psycopg://luster:v3ry-l0ng-pw@db.internal:5432/luster",
    "s3_endpoint": "https://4f1c2a.r2.cloudflarestorage.com",
    "s3_bucket": "luster-photos",
    "s3_access_key_id": "9c1e0b8f4d2a7e6b5c3d1f0a9e8b7c6d",
    "s3_secret_access_key": "0f9e8d7c6b5a49382716a5b4c3d2e1f00f9e8d7c6b5a4938",
    "supabase_url": "https://abcdefghijklmnop.supabase.co",
    "supabase_anon_key": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb2xlIjoiYW5vbiJ9.dGhpcy1pcy1ub3QtYS1yZWFsLWtleQ",
    "stripe_secret_key": "sk_live_51NzQe2ExAmPlEkEy0000000000",
    "stripe_webhook_secret": "whsec_5f3c9a1d7e2b8c4f6a0d9e1b3c5a7f9d",
    "openai_api_key": "sk-proj-Xq7a9Lm2Np4Rs6Tu8Vw0Yz1Bc3De5Fg",
    "openai_timeout_seconds": 120,
    "job_lease_seconds": 300,
}


def production_settings(**overrides: object) -> Settings:
    return Settings(_env_file=None, **{**PRODUCTION, **overrides})


def test_a_complete_production_configuration_starts() -> None:
    settings = production_settings()
    assert production_problems(settings) == []
    check_production_settings(settings)  # does not raise


def test_development_runs_on_the_embedded_providers() -> None:
    check_production_settings(Settings(_env_file=None, luster_env="development"))


@pytest.mark.parametrize(
    ("overrides", "named_setting"),
    [
        ({"supabase_url": ""}, "SUPABASE_URL"),
        ({"stripe_secret_key": ""}, "STRIPE_SECRET_KEY"),
        ({"stripe_webhook_secret": ""}, "STRIPE_WEBHOOK_SECRET"),
        ({"app_url": "http://photos.luster.example"}, "APP_URL"),
        ({"app_url": "https://"}, "APP_URL"),
        ({"database_url": ""}, "DATABASE_URL"),
        ({"database_url": "sqlite:////var/data/luster.db"}, "DATABASE_URL"),
        ({"database_url": "postgresql://luster:pw@db.internal:5432/luster"}, "DATABASE_URL"),
        ({"s3_endpoint": "", "s3_bucket": ""}, "S3_BUCKET"),
        ({"s3_bucket": ""}, "S3_BUCKET"),
        ({"stripe_secret_key": "sk_test_placeholder"}, "STRIPE_SECRET_KEY"),
        ({"stripe_secret_key": "sk_test_51NzQe2ExAmPlEkEy0000000000"}, "STRIPE_SECRET_KEY"),
        ({"stripe_secret_key": "rk_test_51NzQe2ExAmPlEkEy0000000000"}, "STRIPE_SECRET_KEY"),
        ({"stripe_webhook_secret": "whsec_xxx"}, "STRIPE_WEBHOOK_SECRET"),
        ({"supabase_anon_key": "changeme"}, "SUPABASE_ANON_KEY"),
        ({"s3_secret_access_key": "secret"}, "S3_SECRET_ACCESS_KEY"),
        ({"s3_access_key_id": "xxx"}, "S3_ACCESS_KEY_ID"),
        ({"openai_api_key": "<your OpenAI key>"}, "OPENAI_API_KEY"),
        ({"supabase_jwt_secret": "change-me"}, "SUPABASE_JWT_SECRET"),
        ({"openai_timeout_seconds": 300, "job_lease_seconds": 300}, "OPENAI_TIMEOUT_SECONDS"),
    ],
)
def test_production_refuses_and_names_the_setting(overrides: dict[str, object], named_setting: str) -> None:
    with pytest.raises(UnsafeSettingsError) as refused:
        check_production_settings(production_settings(**overrides))
    assert len(refused.value.problems) == 1, refused.value.problems
    assert refused.value.problems[0].startswith(named_setting)
    assert named_setting in str(refused.value)


def test_every_problem_is_reported_at_once() -> None:
    problems = production_problems(Settings(_env_file=None, luster_env="production"))
    named = {problem.split()[0] for problem in problems}
    assert {"SUPABASE_URL", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "DATABASE_URL", "APP_URL"} <= named


def test_refusal_never_prints_a_secret_value() -> None:
    with pytest.raises(UnsafeSettingsError) as refused:
        check_production_settings(production_settings(app_url="http://x.example"))
    for name in ("stripe_secret_key", "stripe_webhook_secret", "s3_secret_access_key", "supabase_anon_key"):
        assert PRODUCTION[name] not in str(refused.value)


@pytest.mark.parametrize("value", ["", "changeme", "secret", "xxx", "sk_test_placeholder", "whsec_changeme", " TODO "])
def test_placeholders_are_recognised(value: str) -> None:
    assert is_placeholder(value)


@pytest.mark.parametrize("value", [PRODUCTION["stripe_secret_key"], PRODUCTION["s3_secret_access_key"], "sk_test_51Hx9Abc"])
def test_real_looking_keys_are_not_placeholders(value: str) -> None:
    assert not is_placeholder(value)


def _luster(args: list[str], env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    # A clean environment: only what the test sets reaches Settings (no .env: cwd has none).
    base = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), "LUSTER_DATA_DIR": str(tmp_path / "data")}
    return subprocess.run(
        [sys.executable, "-m", "luster_app.cli", *args],
        cwd=tmp_path, env={**base, **env}, capture_output=True, text=True, timeout=120,
    )


@pytest.mark.parametrize("command", [["migrate"], ["serve", "--no-worker"]])
def test_cli_refuses_to_start_in_production_on_embedded_providers(command: list[str], tmp_path: Path) -> None:
    result = _luster(command, {"LUSTER_ENV": "production"}, tmp_path)
    assert result.returncode == 2
    assert "LUSTER_ENV=production refuses to start" in result.stderr
    assert "SUPABASE_URL is unset" in result.stderr
    assert "STRIPE_WEBHOOK_SECRET is missing" in result.stderr
    assert not (tmp_path / "data").exists()  # nothing was created: no SQLite file, no migration


def test_cli_migrates_in_development(tmp_path: Path) -> None:
    result = _luster(["migrate"], {"LUSTER_ENV": "development"}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "data" / "luster.db").exists()


def test_the_app_refuses_to_serve_in_production_on_embedded_providers(tmp_path: Path) -> None:
    # What the Reflex backend runs at startup, before it accepts a connection.
    code = "from luster_app.luster_app import app\nfor task in app.get_lifespan_tasks():\n    task()\n"
    base = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), "LUSTER_ENV": "production"}
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=base, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "UnsafeSettingsError: LUSTER_ENV=production refuses to start" in result.stderr
    assert "STRIPE_SECRET_KEY is unset" in result.stderr
