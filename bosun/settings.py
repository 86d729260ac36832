"""Bosun's Django settings: one module, driven by the environment (see bosun.lib.config)."""

from pathlib import Path
from typing import Any

from celery.schedules import crontab

from bosun.lib import config as bosun_config

BASE_DIR = Path(__file__).resolve().parent.parent
BOSUN = bosun_config.load(base_dir=BASE_DIR)

SECRET_KEY = BOSUN.secret_key
DEBUG = BOSUN.debug
ALLOWED_HOSTS = BOSUN.allowed_hosts
CSRF_TRUSTED_ORIGINS = BOSUN.csrf_trusted_origins

# daphne is not an installed app: it would only swap in an ASGI `runserver`, which Bosun
# does not use (`serve` starts daphne itself), and it loads Twisted into every web, worker and
# beat process (about 18 MB each).
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "django_htmx",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "template_partials",
    "audit",
    "access",
    "web",
    "fleet",
    "webhooks",
    "parameters",
    "commands",
    "sessions.apps.SessionsConfig",
    "drf_spectacular",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # The AWS SSM API on POST /: before anything reads the signed body or asks for a session.
    "access.aws_endpoint.AwsEndpointMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "access.middleware.MfaMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "bosun.urls"
WSGI_APPLICATION = "bosun.wsgi.application"
ASGI_APPLICATION = "bosun.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "web.context_processors.navigation",
            ],
        },
    },
]

# --- Stores -------------------------------------------------------------------------------

if BOSUN.database.engine == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": BOSUN.database.name,
            "USER": BOSUN.database.user,
            "PASSWORD": BOSUN.database.password,
            "HOST": BOSUN.database.host,
            "PORT": BOSUN.database.port or 5432,
            # A pool per process instead of persistent connections: under daphne (ASGI) every
            # request runs in a fresh thread, so persistent connections would pile up until
            # PostgreSQL refuses clients; the pool hands connections back after each request.
            "CONN_MAX_AGE": 0,
            "OPTIONS": {
                "connect_timeout": 5,
                "pool": {"min_size": 1, "max_size": BOSUN.db_pool_size, "timeout": 10},
                **BOSUN.database.options,
            },
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": BOSUN.database.name,
            "OPTIONS": {
                # WAL lets the web server, the worker and beat read while one of them writes;
                # IMMEDIATE takes the write lock at BEGIN so two writers queue instead of one
                # failing with "database is locked" halfway through a transaction.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

if BOSUN.redis:
    CACHES = {
        "default": {
            "BACKEND": "bosun.lib.redis_cache.RedisCache",
            "LOCATION": BOSUN.redis.url,
            "KEY_PREFIX": "bosun",
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # redis-py's default 5 s socket timeout equals channels_redis's 5 s BZPOPMIN wait:
            # the client gave up first and killed a consumer every few seconds.
            "CONFIG": {
                "hosts": [{"address": BOSUN.redis.url, "socket_timeout": None}],
                "prefix": "bosun",
                # Capacity counts per Redis key, and every consumer of one daphne process shares
                # one key: at the default 100, waking the agents of a command sent to a thousand
                # nodes dropped most wake-ups (they then waited for their next heartbeat).
                "capacity": 20000,
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    # Channels' in-memory layer lives inside one process, so a Celery task could not reach a
    # browser's websocket through it; this one shares a SQLite file between the processes.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "bosun.lib.sqlite_channel_layer.SQLiteChannelLayer",
            "CONFIG": {"path": str(BOSUN.data_dir / "channels.sqlite3")},
        }
    }

# --- Celery ---------------------------------------------------------------------------------

CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE = {
    "worker-heartbeat": {"task": "web.tasks.record_worker_heartbeat", "schedule": 10.0},
    "audit-checkpoint-and-prune": {
        "task": "audit.tasks.checkpoint_and_prune",
        "schedule": crontab(hour=3, minute=17),
    },
}
# Agents heartbeat at this interval; the sweep that marks silent nodes ConnectionLost runs
# often enough to notice within a fraction of it.
BOSUN_AGENT_HEARTBEAT_SECONDS = BOSUN.agent_heartbeat_seconds
BOSUN_AGENT_KEY_MAX_AGE_DAYS = BOSUN.agent_key_max_age_days
CELERY_BEAT_SCHEDULE["fleet-connection-sweep"] = {
    "task": "fleet.tasks.sweep_connection_lost",
    "schedule": float(max(1, min(15, BOSUN.agent_heartbeat_seconds // 2))),
}
# Webhook deliveries are woken after each emitter's commit; the sweep catches the rest (retries
# whose backoff ran out, wake-ups lost with a process, claims a dead worker left behind).
CELERY_BEAT_SCHEDULE["webhooks-delivery-sweep"] = {
    "task": "webhooks.tasks.deliver_due",
    "schedule": 15.0,
}
# Parameter policies (Expiration, notifications) are checked every minute, as AWS does.
CELERY_BEAT_SCHEDULE["commands-sweep"] = {"task": "commands.tasks.sweep", "schedule": 5.0}
CELERY_BEAT_SCHEDULE["parameters-enforce-policies"] = {
    "task": "parameters.tasks.enforce_policies",
    "schedule": 60.0,
}
# 0 keeps audit events forever.
BOSUN_AUDIT_RETENTION_DAYS = BOSUN.audit_retention_days
# Session recordings past their retention are deleted daily; 0 keeps them forever.
BOSUN_SESSION_RECORDING_RETENTION_DAYS = BOSUN.session_recording_retention_days
# Session Manager: a reason to give, the run-as user ("" = the agent's own), root allowed,
# recording mandatory, keystrokes recorded, idle timeout and maximum duration (0 = none).
BOSUN_SESSION_REASON_REQUIRED = BOSUN.session_reason_required
BOSUN_SESSION_RUN_AS = BOSUN.session_run_as
BOSUN_SESSION_ALLOW_ROOT = BOSUN.session_allow_root
BOSUN_SESSION_RECORDING_REQUIRED = BOSUN.session_recording_required
BOSUN_SESSION_RECORD_INPUT = BOSUN.session_record_input
BOSUN_SESSION_IDLE_COUNTS_OUTPUT = BOSUN.session_idle_counts_output
BOSUN_SESSION_IDLE_TIMEOUT_MINUTES = BOSUN.session_idle_timeout_minutes
BOSUN_SESSION_MAX_DURATION_MINUTES = BOSUN.session_max_duration_minutes
# Sessions whose agent never connected, was lost, or never confirmed a termination.
CELERY_BEAT_SCHEDULE["sessions-sweep"] = {"task": "sessions.tasks.sweep", "schedule": 10.0}
CELERY_BEAT_SCHEDULE["sessions-expire-recordings"] = {
    "task": "sessions.tasks.expire_recordings",
    "schedule": crontab(hour=3, minute=47),
}
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any]
if BOSUN.redis:
    CELERY_BROKER_URL = BOSUN.redis.url
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
else:
    _broker_dir = BOSUN.data_dir / "broker"
    for _folder in ("queue", "control"):
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://localhost/"
    # kombu's filesystem transport, with atomic message writes (see bosun/lib/file_broker.py).
    CELERY_BROKER_TRANSPORT = "bosun.lib.file_broker:Transport"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "control_folder": str(_broker_dir / "control"),
        # The worker polls the folder; 20 ms keeps a task round trip well under 100 ms for a
        # few hundred cheap directory listings a minute.
        "polling_interval": 0.02,
    }
    # Remote control needs a fan-out exchange; the file broker's is best left unused.
    CELERY_WORKER_ENABLE_REMOTE_CONTROL = False
    CELERY_BEAT_SCHEDULE_FILENAME = str(BOSUN.data_dir / "celerybeat-schedule")

# --- Auth and security ----------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "web.auth.CachedModelBackend" if BOSUN.redis else "django.contrib.auth.backends.ModelBackend"
]
OTP_TOTP_ISSUER = "Bosun"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# With Redis, sessions are read from the cache and written through to the database: one
# database query less on every signed-in request. Without it (embedded) the cache is per
# process, so sessions stay in the database where every process sees a sign-out at once.
SESSION_ENGINE = (
    "django.contrib.sessions.backends.cached_db"
    if BOSUN.redis
    else "django.contrib.sessions.backends.db"
)
SESSION_COOKIE_NAME = "bosun_session"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = 12 * 3600
CSRF_COOKIE_NAME = "bosun_csrftoken"
CSRF_FAILURE_VIEW = "web.views.csrf_failure"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if BOSUN.secure_proxy:
    # Behind a TLS-terminating proxy that sets X-Forwarded-Proto and X-Forwarded-For (see
    # deploy/nginx): the client's address comes from the proxy.
    MIDDLEWARE.insert(0, "bosun.lib.proxy.ForwardedForMiddleware")
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # First, so an unauthenticated call is a 401 that names the Bearer scheme.
        "access.api.authentication.AccessKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": None,
    # Domain errors render as {"detail", "code"} with their own status, whichever app raised.
    "EXCEPTION_HANDLER": "bosun.lib.api_errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
# The OpenAPI document of /api/v1/, served at /api/schema/ (JSON or YAML).
SPECTACULAR_SETTINGS = {
    "TITLE": "Bosun REST API",
    "DESCRIPTION": "Bosun's own REST API. The AWS SSM API is served on POST / as well.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
}

# --- Static files ---------------------------------------------------------------------------

STATIC_URL = "/static/"
STATIC_ROOT = BOSUN.data_dir / "static"
STATICFILES_DIRS = [
    BASE_DIR / "static",
    # Front-end libraries come from npm (package.json); only their built files are served.
    ("vendor/bootstrap", BASE_DIR / "node_modules" / "bootstrap" / "dist"),
    ("vendor/bootstrap-icons", BASE_DIR / "node_modules" / "bootstrap-icons" / "font"),
    ("vendor/xterm/lib", BASE_DIR / "node_modules" / "@xterm" / "xterm" / "lib"),
    ("vendor/xterm/css", BASE_DIR / "node_modules" / "@xterm" / "xterm" / "css"),
    ("vendor/xterm-addon-fit", BASE_DIR / "node_modules" / "@xterm" / "addon-fit" / "lib"),
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
MEDIA_ROOT = BOSUN.data_dir / "media"

# --- Locale and logging ---------------------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": BOSUN.log_level},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "daphne": {"level": "WARNING"},
    },
}
