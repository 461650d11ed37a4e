"""DATABASE_URL as users have it: libpq parameters become asyncpg's arguments."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest

from commander.settings import ConfigError, load_core_settings
from commander.store.urls import (
    PoolOptions,
    database_target,
    normalise_database_url,
)
from tests.fakes.postgres_door import Certificates, write_certificates

BASE = "postgresql://app@db.example.com:6432/prod"


def ssl_arg(url: str) -> Any:
    return database_target(url).connect_args["ssl"]


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return write_certificates(tmp_path_factory.mktemp("certs"))


@pytest.mark.parametrize(
    "raw",
    [
        "postgresql://app@db.example.com:6432/prod",
        "postgres://app@db.example.com:6432/prod",
        "postgresql+asyncpg://app@db.example.com:6432/prod",
    ],
)
def test_every_postgres_scheme_picks_asyncpg(raw: str) -> None:
    assert normalise_database_url(raw) == "postgresql+asyncpg://app@db.example.com:6432/prod"
    target = database_target(raw)
    assert not target.is_sqlite
    assert target.where == "db.example.com:6432"


def test_sqlite_stays_as_it_was() -> None:
    assert normalise_database_url("sqlite:///data/x.db") == "sqlite+aiosqlite:///data/x.db"
    target = database_target("sqlite:///data/x.db")
    assert target.is_sqlite and target.connect_args == {}


def test_password_with_special_characters_survives() -> None:
    raw = "postgresql://app:p%40ss%2Fw%3Ard%23%3F%20%25@db.example.com/prod"
    target = database_target(raw)
    assert target.url.password == "p@ss/w:rd#? %"
    assert make_roundtrip(raw) == "p@ss/w:rd#? %"
    assert "p@ss" not in target.where


def make_roundtrip(raw: str) -> str | None:
    return database_target(normalise_database_url(raw)).url.password


def test_libpq_parameters_are_translated_and_removed_from_the_url() -> None:
    target = database_target(
        BASE + "?connect_timeout=7&application_name=commander"
        "&options=-c%20search_path%3Dapp%20-c%20statement_timeout%3D5000"
        "&target_session_attrs=read-write&sslmode=disable"
    )
    assert target.url.query == {}
    assert target.connect_args == {
        "timeout": 7.0,
        "server_settings": {
            "search_path": "app",
            "statement_timeout": "5000",
            "application_name": "commander",
        },
        "target_session_attrs": "read-write",
        "ssl": "disable",
    }


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ("-csearch_path=a", {"search_path": "a"}),
        ("--statement-timeout=10s", {"statement_timeout": "10s"}),
        (r"-c search_path=a,\ b -c lock_timeout=3s", {"search_path": "a, b", "lock_timeout": "3s"}),
    ],
)
def test_options_forms_of_libpq(options: str, expected: dict[str, str]) -> None:
    from urllib.parse import quote

    target = database_target(f"{BASE}?options={quote(options)}")
    assert target.connect_args["server_settings"] == expected


def test_connect_timeout_follows_libpq_and_settings() -> None:
    assert database_target(BASE).connect_args["timeout"] == PoolOptions.connect_timeout_s
    assert database_target(BASE, PoolOptions(connect_timeout_s=3)).connect_args["timeout"] == 3
    assert database_target(BASE + "?connect_timeout=1").connect_args["timeout"] == 2.0
    assert database_target(BASE + "?connect_timeout=0").connect_args["timeout"] is None


def test_host_and_port_in_the_query_as_libpq_allows() -> None:
    target = database_target("postgresql:///prod?host=/var/run/postgresql&port=5433")
    assert target.connect_args["host"] == "/var/run/postgresql"
    assert target.connect_args["port"] == 5433
    assert target.where == "/var/run/postgresql:5433"


@pytest.mark.parametrize("mode", ["disable", "allow", "prefer"])
def test_modes_without_verification_are_left_to_asyncpg(mode: str) -> None:
    # asyncpg's own handling is the only one that falls back to a plain connection.
    assert database_target(f"{BASE}?sslmode={mode}").connect_args["ssl"] == mode


def test_no_sslmode_keeps_asyncpg_default() -> None:
    assert "ssl" not in database_target(BASE).connect_args


def test_require_encrypts_without_checking_the_certificate() -> None:
    context = ssl_arg(BASE + "?sslmode=require")
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_NONE and not context.check_hostname


def test_verify_ca_checks_the_chain_against_sslrootcert(certs: Certificates) -> None:
    context = ssl_arg(f"{BASE}?sslmode=verify-ca&sslrootcert={certs.ca}")
    assert context.verify_mode == ssl.CERT_REQUIRED and not context.check_hostname
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "Test CA"),),)]


def test_verify_full_also_checks_the_host_name(certs: Certificates) -> None:
    context = ssl_arg(f"{BASE}?sslmode=verify-full&sslrootcert={certs.ca}")
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_require_with_a_root_certificate_verifies_like_libpq(certs: Certificates) -> None:
    context = ssl_arg(f"{BASE}?sslmode=require&sslrootcert={certs.ca}")
    assert context.verify_mode == ssl.CERT_REQUIRED and not context.check_hostname


def test_verify_full_with_system_roots() -> None:
    context = ssl_arg(BASE + "?sslmode=verify-full&sslrootcert=system")
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED


def test_client_certificate_is_loaded(certs: Certificates) -> None:
    url = f"{BASE}?sslmode=verify-full&sslrootcert={certs.ca}&sslcert={certs.cert}"
    context = ssl_arg(f"{url}&sslkey={certs.key}")
    assert isinstance(context, ssl.SSLContext)


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("foo=1", "'foo'"),
        ("sslmode=always", "sslmode='always'"),
        ("sslmode=verify-ca&sslrootcert=/nowhere/ca.pem", "/nowhere/ca.pem"),
        ("connect_timeout=soon", "connect_timeout='soon'"),
        ("target_session_attrs=fastest", "target_session_attrs='fastest'"),
        ("options=-B%2010", "'-B'"),
        ("options=-c%20statement_timeout", "'statement_timeout'"),
        ("port=99999", "port='99999'"),
        ("sslmode=prefer&sslcert=/x.pem", "sslcert"),
        ("sslmode=require&sslkey=/dev/null", "sslkey"),
        ("application_name=a&application_name=b", "'application_name'"),
    ],
)
def test_bad_parameters_are_config_errors_naming_them(query: str, named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        normalise_database_url(f"postgresql://app:hunter2@db/prod?{query}")
    assert named in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_unreadable_key_is_a_config_error(certs: Certificates, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.key"
    wrong.write_text("not a key")
    url = f"{BASE}?sslmode=require&sslcert={certs.cert}&sslkey={wrong}"
    with pytest.raises(ConfigError, match="sslcert"):
        normalise_database_url(url)


def test_invalid_url_message_does_not_echo_the_password() -> None:
    with pytest.raises(ConfigError) as caught:
        normalise_database_url("postgresql://app:hunter2@db:notaport/prod")
    assert "hunter2" not in str(caught.value)


def test_pool_settings_come_from_the_environment() -> None:
    env = {
        "OPENAI_API_KEY": "k",
        "DATABASE_URL": BASE,
        "DB_POOL_SIZE": "25",
        "DB_MAX_OVERFLOW": "0",
        "DB_POOL_TIMEOUT_S": "12.5",
        "DB_CONNECT_TIMEOUT_S": "4",
    }
    assert load_core_settings(env).database_pool == PoolOptions(25, 0, 12.5, 4.0)
    assert load_core_settings({"OPENAI_API_KEY": "k"}).database_pool == PoolOptions()


@pytest.mark.parametrize(
    ("name", "value"),
    [("DB_POOL_SIZE", "0"), ("DB_MAX_OVERFLOW", "-1"), ("DB_POOL_TIMEOUT_S", "x")],
)
def test_bad_pool_settings_are_config_errors(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_core_settings({"OPENAI_API_KEY": "k", name: value})
