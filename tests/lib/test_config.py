import stat
from pathlib import Path

import pytest

from bosun.lib.config import ConfigError, load


@pytest.fixture
def base(tmp_path: Path) -> Path:
    return tmp_path


def env_with(tmp_path: Path, **values: str) -> dict[str, str]:
    return {"BOSUN_DATA_DIR": str(tmp_path / "data"), **values}


def test_defaults_are_the_embedded_stack_on_localhost(base):
    config = load(env_with(base), base_dir=base)
    assert config.embedded
    assert (config.host, config.port) == ("127.0.0.1", 8000)
    assert config.url == "http://127.0.0.1:8000"
    assert config.debug is False
    assert config.database.engine == "sqlite"
    assert config.database.name == str(base / "data" / "bosun.sqlite3")


def test_generated_secrets_are_private_and_stable_across_loads(base):
    first = load(env_with(base), base_dir=base)
    second = load(env_with(base), base_dir=base)
    assert first.secret_key == second.secret_key
    for name in ("secret_key", "master.key"):
        mode = stat.S_IMODE((base / "data" / name).stat().st_mode)
        assert mode == 0o600, name


def test_secret_key_can_come_from_a_file(base):
    key_file = base / "key"
    key_file.write_text("from-a-file\n")
    config = load(env_with(base, BOSUN_SECRET_KEY_FILE=str(key_file)), base_dir=base)
    assert config.secret_key == "from-a-file"


def test_setting_a_secret_and_its_file_together_is_refused(base):
    with pytest.raises(ConfigError, match=r"BOSUN_SECRET_KEY: set either"):
        load(env_with(base, BOSUN_SECRET_KEY="a", BOSUN_SECRET_KEY_FILE="/x"), base_dir=base)


def test_a_missing_secret_file_names_the_variable(base):
    with pytest.raises(ConfigError, match=r"BOSUN_SECRET_KEY_FILE: cannot read /nope"):
        load(env_with(base, BOSUN_SECRET_KEY_FILE="/nope"), base_dir=base)


def test_debug_is_on_only_when_asked(base):
    assert load(env_with(base, BOSUN_DEBUG="1"), base_dir=base).debug is True
    with pytest.raises(ConfigError, match=r"BOSUN_DEBUG: expected 1 or 0"):
        load(env_with(base, BOSUN_DEBUG="maybe"), base_dir=base)


def test_postgres_url_is_parsed_and_described_without_its_password(base):
    config = load(
        env_with(base, DATABASE_URL="postgres://bosun:s3cret@db.internal:5433/bosun"),
        base_dir=base,
    )
    assert config.database.engine == "postgres"
    assert (config.database.host, config.database.port) == ("db.internal", 5433)
    assert config.database.password == "s3cret"
    assert "s3cret" not in config.database.describe()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://root@localhost/bosun", "DATABASE_URL: unsupported database 'mysql'"),
        ("user:hunter2@somewhere", "DATABASE_URL: not a URL"),
        ("postgres://localhost", "DATABASE_URL: expected postgres://"),
        ("postgres://db:port/bosun", "DATABASE_URL: the port is not a number"),
    ],
)
def test_a_malformed_database_url_is_one_clear_line(base, url, message):
    with pytest.raises(ConfigError) as raised:
        load(env_with(base, DATABASE_URL=url), base_dir=base)
    assert str(raised.value).startswith(message)
    assert "hunter2" not in str(raised.value)
    assert "\n" not in str(raised.value)


def test_redis_url_switches_to_the_production_stack(base):
    config = load(env_with(base, REDIS_URL="redis://cache:6380/2"), base_dir=base)
    assert not config.embedded
    assert (config.redis.host, config.redis.port, config.redis.db) == ("cache", 6380, 2)


@pytest.mark.parametrize("url", ["http://cache:6379", "redis://cache:6379/x", "redis://:6379/0"])
def test_a_malformed_redis_url_is_refused(base, url):
    with pytest.raises(ConfigError, match=r"^REDIS_URL: "):
        load(env_with(base, REDIS_URL=url), base_dir=base)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("BOSUN_PORT", "eighty"),
        ("BOSUN_PORT", "70000"),
        ("BOSUN_HOST", "bosun.example.com"),
        ("BOSUN_ACCOUNT_ID", "1234"),
        ("BOSUN_REGION", "US EAST"),
        ("BOSUN_LOG_LEVEL", "chatty"),
        ("BOSUN_WEB_WORKERS", "0"),
    ],
)
def test_each_wrong_value_names_its_variable(base, variable, value):
    with pytest.raises(ConfigError, match=f"^{variable}: "):
        load(env_with(base, **{variable: value}), base_dir=base)


def test_an_unusable_data_dir_names_the_variable(base):
    blocker = base / "a-file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match=r"^BOSUN_DATA_DIR: cannot create"):
        load({"BOSUN_DATA_DIR": str(blocker / "data")}, base_dir=base)


def test_a_relative_data_dir_is_under_the_checkout(base):
    config = load({"BOSUN_DATA_DIR": "custom"}, base_dir=base)
    assert config.data_dir == base / "custom"


def test_a_listening_address_other_than_loopback_is_an_allowed_host(base):
    config = load(env_with(base, BOSUN_HOST="10.1.2.3"), base_dir=base)
    assert "10.1.2.3" in config.allowed_hosts
    assert config.url == "http://10.1.2.3:8000"


def test_database_url_carries_libpq_options_and_unix_sockets(base):
    config = load(
        env_with(base, DATABASE_URL="postgres://bosun@%2Frun%2Fpostgresql/bosun?sslmode=disable"),
        base_dir=base,
    )
    assert config.database.host == "/run/postgresql"
    assert config.database.options == {"sslmode": "disable"}
    other = load(
        env_with(base, DATABASE_URL="postgresql://bosun@/bosun?host=/var/run/postgresql"),
        base_dir=base,
    )
    assert other.database.host == "/var/run/postgresql"


def test_an_unknown_database_url_parameter_is_reported(base):
    with pytest.raises(ConfigError, match=r"^DATABASE_URL: unknown parameter sslmod;"):
        load(env_with(base, DATABASE_URL="postgres://h/db?sslmod=require"), base_dir=base)


def test_store_urls_and_the_admin_password_can_come_from_files(base):
    (base / "db").write_text("postgres://bosun:pw@db/bosun\n")
    (base / "admin").write_text("hunter2-long-enough\n")
    config = load(
        env_with(
            base, DATABASE_URL_FILE=str(base / "db"), BOSUN_ADMIN_PASSWORD_FILE=str(base / "admin")
        ),
        base_dir=base,
    )
    assert config.database.host == "db"
    assert config.admin_password == "hunter2-long-enough"


def test_secrets_stay_out_of_the_configuration_repr(base):
    config = load(
        env_with(
            base,
            DATABASE_URL="postgres://bosun:dbpass123@db/bosun",
            REDIS_URL="redis://:redispass456@cache:6379/0",
            BOSUN_ADMIN_PASSWORD="adminpass789",
        ),
        base_dir=base,
    )
    shown = repr(config)
    for secret in ("dbpass123", "redispass456", "adminpass789", config.secret_key):
        assert secret not in shown
