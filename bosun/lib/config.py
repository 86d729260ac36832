"""Reading Bosun's configuration from the environment.

Every variable Bosun understands is read here and nowhere else, so that a wrong value fails at
start with one line naming the variable (``ConfigError``) instead of a traceback deep inside a
library. Secrets may come from ``NAME`` or from a file named by ``NAME_FILE`` (the Docker and
systemd-credentials convention); secrets Bosun generates itself are kept 0600 under the data dir.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit


class ConfigError(Exception):
    """A configuration value Bosun cannot start with. The message names the variable to fix."""


@dataclass(frozen=True)
class DatabaseConfig:
    engine: str  # "sqlite" or "postgres"
    name: str
    user: str = ""
    password: str = field(default="", repr=False)
    host: str = ""
    port: int | None = None
    # libpq connection parameters from the URL's query (sslmode=verify-full, …).
    options: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        """Where the database is, without the password (safe for logs and error lines)."""
        if self.engine == "sqlite":
            return f"SQLite at {self.name}"
        return f"PostgreSQL at {self.host}:{self.port or 5432}/{self.name}"


@dataclass(frozen=True)
class RedisConfig:
    url: str = field(repr=False)  # may carry a password
    host: str
    port: int
    db: int

    def describe(self) -> str:
        return f"Redis at {self.host}:{self.port}/{self.db}"


def _flag(env: Mapping[str, str], name: str, default: bool = False) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name}: expected 1 or 0 (true/false), got {raw!r}")


def _int(env: Mapping[str, str], name: str, default: int, *, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}: expected a whole number, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}: must be between {low} and {high}, got {value}")
    return value


def _list(env: Mapping[str, str], name: str, default: list[str]) -> list[str]:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def read_secret(env: Mapping[str, str], name: str) -> str | None:
    """The secret from ``NAME`` or from the file named by ``NAME_FILE``; ``None`` if neither."""
    direct = env.get(name)
    file_name = env.get(f"{name}_FILE")
    if direct and file_name:
        raise ConfigError(f"{name}: set either {name} or {name}_FILE, not both")
    if direct:
        return direct
    if file_name:
        try:
            value = Path(file_name).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{name}_FILE: cannot read {file_name} ({exc.strerror})") from None
        if not value:
            raise ConfigError(f"{name}_FILE: {file_name} is empty")
        return value
    return None


def ensure_private_file(path: Path, make_value, *, variable: str) -> str:
    """Read a generated secret, creating it 0600 on first use.

    ``O_EXCL`` makes the first writer win when several processes start at once; the others read
    what it wrote.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    except OSError as exc:
        raise ConfigError(f"{variable}: cannot create {path} ({exc.strerror})") from None
    else:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(make_value() + "\n")
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{variable}: cannot read {path} ({exc.strerror})") from None


def ensure_data_dir(raw: str, base_dir: Path) -> Path:
    path = Path(raw)
    if not path.is_absolute():
        path = base_dir / path
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"BOSUN_DATA_DIR: cannot create {path} ({exc.strerror}); "
            "point it at a writable directory"
        ) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(
            f"BOSUN_DATA_DIR: {path} is not writable by this user; point it at a writable directory"
        )
    return path


def parse_database_url(raw: str | None, data_dir: Path) -> DatabaseConfig:
    if not raw:
        return DatabaseConfig(engine="sqlite", name=str(data_dir / "bosun.sqlite3"))
    parts = urlsplit(raw)
    scheme = parts.scheme.lower() if "://" in raw else ""
    if scheme in {"postgres", "postgresql", "pgsql"}:
        name = unquote(parts.path.lstrip("/"))
        try:
            port = parts.port
        except ValueError:
            raise ConfigError("DATABASE_URL: the port is not a number") from None
        options = _postgres_options(parts.query)
        # A Unix socket directory is given as ?host=/run/postgresql or percent-encoded in place
        # of the host (postgres://bosun@%2Frun%2Fpostgresql/bosun), as libpq accepts both.
        host = options.pop("host", "") or unquote(parts.netloc.rpartition("@")[2].split(":")[0])
        if not host or not name:
            raise ConfigError(
                "DATABASE_URL: expected postgres://USER:PASSWORD@HOST:PORT/NAME "
                "(host and database name are required)"
            )
        return DatabaseConfig(
            engine="postgres",
            name=name,
            user=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            host=host,
            port=port,
            options=options,
        )
    if scheme == "sqlite":
        # sqlite:////absolute/path or sqlite:///relative/path, as dj-database-url spells it.
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        if not path:
            raise ConfigError("DATABASE_URL: sqlite:///PATH needs a file path")
        file_path = Path(path) if Path(path).is_absolute() else data_dir / path
        return DatabaseConfig(engine="sqlite", name=str(file_path))
    # Never echo the value itself: a malformed URL may still hold a password.
    problem = f"unsupported database {scheme!r}" if scheme else "not a URL"
    raise ConfigError(
        f"DATABASE_URL: {problem}; use postgres://USER:PASSWORD@HOST:5432/NAME "
        "or leave it unset for the embedded SQLite database"
    )


# libpq parameters a DATABASE_URL query may carry; anything else is a typo worth reporting.
POSTGRES_URL_OPTIONS = {
    "host",
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "sslcrl",
    "connect_timeout",
    "application_name",
    "target_session_attrs",
    "options",
    "passfile",
}


def _postgres_options(query: str) -> dict[str, str]:
    options = dict(parse_qsl(query, keep_blank_values=True))
    unknown = sorted(set(options) - POSTGRES_URL_OPTIONS)
    if unknown:
        raise ConfigError(
            f"DATABASE_URL: unknown parameter {', '.join(unknown)}; "
            f"supported: {', '.join(sorted(POSTGRES_URL_OPTIONS))}"
        )
    return options


def parse_redis_url(raw: str | None) -> RedisConfig | None:
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in {"redis", "rediss"}:
        raise ConfigError("REDIS_URL: expected redis://HOST:PORT/DB (or rediss:// for TLS)")
    try:
        port = parts.port or 6379
    except ValueError:
        raise ConfigError("REDIS_URL: the port is not a number") from None
    if not parts.hostname:
        raise ConfigError("REDIS_URL: expected redis://HOST:PORT/DB, the host is missing")
    db_text = parts.path.lstrip("/") or "0"
    if not db_text.isdigit():
        raise ConfigError(f"REDIS_URL: the database number must be a number, got {db_text!r}")
    return RedisConfig(url=raw, host=parts.hostname, port=port, db=int(db_text))


def _validate_host(raw: str) -> str:
    if raw in {"localhost"}:
        return raw
    try:
        ipaddress.ip_address(raw)
    except ValueError:
        raise ConfigError(
            f"BOSUN_HOST: expected an IP address to listen on (such as 127.0.0.1 or 0.0.0.0), "
            f"got {raw!r}"
        ) from None
    return raw


def _validate_account_id(raw: str) -> str:
    if not (len(raw) == 12 and raw.isdigit()):
        raise ConfigError(f"BOSUN_ACCOUNT_ID: expected 12 digits, got {raw!r}")
    return raw


def _validate_region(raw: str) -> str:
    allowed = set("abcdefghijklmnopqrstuvwxyz0123456789-")
    if not raw or set(raw) - allowed or len(raw) > 32:
        raise ConfigError(f"BOSUN_REGION: expected a region name such as us-east-1, got {raw!r}")
    return raw


# A POSIX user name (what useradd accepts), checked here so a typo fails at start.
RUN_AS_NAME = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}\$?$")


def _validate_run_as(raw: str) -> str:
    if raw and not RUN_AS_NAME.match(raw):
        raise ConfigError(
            f"BOSUN_SESSION_RUN_AS: expected a user name such as ssm-user, got {raw!r:.40}"
        )
    return raw


@dataclass(frozen=True)
class Config:
    base_dir: Path
    data_dir: Path
    debug: bool
    host: str
    port: int
    secret_key: str = field(repr=False)
    database: DatabaseConfig
    redis: RedisConfig | None
    allowed_hosts: list[str]
    csrf_trusted_origins: list[str]
    secure_proxy: bool
    log_level: str
    account_id: str
    region: str
    master_key_file: Path
    web_workers: int
    db_pool_size: int
    audit_retention_days: int
    # How often agents heartbeat (the server tells them); a node is ConnectionLost after
    # missing about two and a half of them.
    agent_heartbeat_seconds: int = 60
    # Node keys older than this are rotated at the agent's next heartbeat.
    agent_key_max_age_days: int = 30
    # Session recordings are deleted this long after their session ended; 0 keeps them.
    session_recording_retention_days: int = 365
    # Session Manager (issue 7): what a new session is started with.
    session_reason_required: bool = False
    session_run_as: str = ""  # "" = the agent's own user
    session_allow_root: bool = False
    session_recording_required: bool = True
    session_record_input: bool = True
    session_idle_counts_output: bool = True  # False: only typing keeps a session alive
    session_idle_timeout_minutes: int = 20
    session_max_duration_minutes: int = 0  # 0 = no limit
    admin_password: str | None = field(default=None, repr=False)

    @property
    def embedded(self) -> bool:
        """No Redis configured: the embedded stack (server-less channel layer and broker)."""
        return self.redis is None

    @property
    def url(self) -> str:
        shown = "127.0.0.1" if self.host in {"0.0.0.0", "::"} else self.host  # noqa: S104
        if ":" in shown:
            shown = f"[{shown}]"
        return f"http://{shown}:{self.port}"


def load(env: Mapping[str, str] | None = None, *, base_dir: Path) -> Config:
    """Build the configuration from ``env`` (the process environment by default)."""
    env = os.environ if env is None else env
    data_dir = ensure_data_dir(env.get("BOSUN_DATA_DIR") or "var", base_dir)

    secret_key = read_secret(env, "BOSUN_SECRET_KEY") or ensure_private_file(
        data_dir / "secret_key",
        lambda: secrets.token_urlsafe(50),
        variable="BOSUN_DATA_DIR",
    )

    master_key_raw = env.get("BOSUN_MASTER_KEY_FILE")
    if master_key_raw:
        master_key_file = Path(master_key_raw)
        if not master_key_file.is_file():
            raise ConfigError(f"BOSUN_MASTER_KEY_FILE: {master_key_file} does not exist")
    else:
        # 256 bits for the key service that encrypts SecureStrings and stored credentials.
        master_key_file = data_dir / "master.key"
        ensure_private_file(
            master_key_file,
            lambda: base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
            variable="BOSUN_DATA_DIR",
        )

    host = _validate_host(env.get("BOSUN_HOST") or "127.0.0.1")
    port = _int(env, "BOSUN_PORT", 8000, low=1, high=65535)
    default_hosts = ["127.0.0.1", "localhost", "[::1]"]
    if host not in {"0.0.0.0", "::", "127.0.0.1", "localhost"}:  # noqa: S104
        default_hosts.append(host)

    log_level = (env.get("BOSUN_LOG_LEVEL") or "INFO").upper()
    if log_level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ConfigError(
            f"BOSUN_LOG_LEVEL: expected DEBUG, INFO, WARNING or ERROR, got {log_level!r}"
        )

    return Config(
        base_dir=base_dir,
        data_dir=data_dir,
        debug=_flag(env, "BOSUN_DEBUG"),
        host=host,
        port=port,
        secret_key=secret_key,
        database=parse_database_url(read_secret(env, "DATABASE_URL"), data_dir),
        redis=parse_redis_url(read_secret(env, "REDIS_URL")),
        allowed_hosts=_list(env, "BOSUN_ALLOWED_HOSTS", default_hosts),
        csrf_trusted_origins=_list(env, "BOSUN_CSRF_TRUSTED_ORIGINS", []),
        secure_proxy=_flag(env, "BOSUN_SECURE_PROXY"),
        log_level=log_level,
        account_id=_validate_account_id(env.get("BOSUN_ACCOUNT_ID") or "000000000000"),
        region=_validate_region(env.get("BOSUN_REGION") or "us-east-1"),
        master_key_file=master_key_file,
        admin_password=read_secret(env, "BOSUN_ADMIN_PASSWORD"),
        audit_retention_days=_int(env, "BOSUN_AUDIT_RETENTION_DAYS", 365, low=0, high=36500),
        agent_heartbeat_seconds=_int(env, "BOSUN_AGENT_HEARTBEAT_SECONDS", 60, low=1, high=3600),
        agent_key_max_age_days=_int(env, "BOSUN_AGENT_KEY_MAX_AGE_DAYS", 30, low=1, high=3650),
        session_recording_retention_days=_int(
            env, "BOSUN_SESSION_RECORDING_RETENTION_DAYS", 365, low=0, high=36500
        ),
        session_reason_required=_flag(env, "BOSUN_SESSION_REASON_REQUIRED"),
        session_run_as=_validate_run_as(env.get("BOSUN_SESSION_RUN_AS") or ""),
        session_allow_root=_flag(env, "BOSUN_SESSION_ALLOW_ROOT"),
        session_recording_required=_flag(env, "BOSUN_SESSION_RECORDING_REQUIRED", True),
        session_record_input=_flag(env, "BOSUN_SESSION_RECORD_INPUT", True),
        session_idle_counts_output=_flag(env, "BOSUN_SESSION_IDLE_COUNTS_OUTPUT", True),
        session_idle_timeout_minutes=_int(
            env, "BOSUN_SESSION_IDLE_TIMEOUT_MINUTES", 20, low=1, high=60
        ),
        session_max_duration_minutes=_int(
            env, "BOSUN_SESSION_MAX_DURATION_MINUTES", 0, low=0, high=1440
        ),
        db_pool_size=_int(env, "BOSUN_DB_POOL_SIZE", 8, low=1, high=100),
        web_workers=_int(env, "BOSUN_WEB_WORKERS", 2 * (os.cpu_count() or 1), low=1, high=64),
    )
