"""Settings for learning_platform, read from the environment (django-environ).

Every knob is an environment variable with a safe default, documented in README.md
("Configuration"). A malformed value stops start-up with ImproperlyConfigured naming the
variable. Set ENV_FILE to read variables from a file (`make run` uses var/run.env);
variables already in the environment win over the file.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
T = TypeVar("T")

env = environ.Env()
if env.str("ENV_FILE", default=""):
    env_file = Path(env.str("ENV_FILE"))
    if not env_file.is_file():
        raise ImproperlyConfigured(f"ENV_FILE={env_file} does not exist")
    environ.Env.read_env(env_file)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _read(name: str, parse: Callable[[str], T], default: T) -> T:
    raw = env.str(name, default=None)
    if raw is None:
        return default
    try:
        return parse(raw.strip())
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(f"{name}={raw!r} is not valid: {exc}") from None


def _bool(value: str) -> bool:
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ValueError("expected one of true/false, yes/no, on/off, 1/0")


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 0:
        raise ValueError("must be zero or a positive integer")
    return number


def _list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _rate(value: str) -> str:
    if not value:
        return ""
    count, _, period = value.partition("/")
    if not count.isdigit() or period[:1] not in {"s", "m", "h", "d"}:
        raise ValueError("expected a rate such as 600/min, 20/s or 10000/day")
    return value


def _rates(value: str) -> list[str]:
    """Comma-separated rates ("100/s,3000/min"); `off` turns the budget off (an empty variable
    reads as unset, so as the default)."""
    return [] if value.lower() == "off" else [_rate(rate) for rate in _list(value)]


DEBUG = _read("DEBUG", _bool, False)

_INSECURE_KEY = "django-insecure-local-development-only-key-never-use-in-production"
SECRET_KEY = _read("SECRET_KEY", str, "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = _INSECURE_KEY

# Keyed hash of end-user ids (Subject.user_hash). Its own secret so that rotating SECRET_KEY
# never breaks the link to existing subjects (and so erasure keeps finding them).
SUBJECT_HASH_KEY = _read("SUBJECT_HASH_KEY", str, "")
if not SUBJECT_HASH_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SUBJECT_HASH_KEY must be set when DEBUG is off")
    SUBJECT_HASH_KEY = "insecure-local-subject-hash-key"

ALLOWED_HOSTS = _read("ALLOWED_HOSTS", _list, ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = _read("CSRF_TRUSTED_ORIGINS", _list, [])
VAR_DIR = Path(_read("VAR_DIR", str, str(BASE_DIR / "var")))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "axes",
    "learning_platform",
    "interactions",
    "curation",
    "training",
    "registry",
    "abtesting",
]

MIDDLEWARE = [
    "learning_platform.metrics.MetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "learning_platform.middleware.RequestSizeLimitMiddleware",
    "learning_platform.middleware.ApiInputMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last: it answers a locked-out login (django-axes)
]

ROOT_URLCONF = "learning_platform.urls"
WSGI_APPLICATION = "learning_platform.wsgi.application"

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
            ],
        },
    },
]


def _database(url: str) -> dict[str, Any]:
    scheme = url.partition("://")[0]
    if scheme not in environ.Env.DB_SCHEMES:
        raise ImproperlyConfigured(f"DATABASE_URL={url!r} is not valid: use postgres://... or sqlite:///path")
    try:
        config = environ.Env.db_url_config(url)
    except Exception as exc:  # django-environ raises several types for a bad URL
        raise ImproperlyConfigured(f"DATABASE_URL={url!r} is not valid: {exc}") from None
    if config["ENGINE"].endswith("sqlite3"):
        # WAL and IMMEDIATE transactions let the web workers and the task cluster share one file.
        config["OPTIONS"] = {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    else:
        config["CONN_MAX_AGE"] = _read("DATABASE_CONN_MAX_AGE", _positive_int, 60)
        config["CONN_HEALTH_CHECKS"] = True
    return config


DATABASES = {"default": _database(env.str("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = _read("REDIS_URL", str, "")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Login limit (django-axes): after ADMIN_LOGIN_FAILURE_LIMIT wrong passwords for one username
# from one IP address, that pair is refused (429) for ADMIN_LOGIN_COOLOFF_MINUTES (0: until
# staff run `manage.py axes_reset_username`/`axes_reset`). A right password resets the count.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
ADMIN_LOGIN_FAILURE_LIMIT = max(1, _read("ADMIN_LOGIN_FAILURE_LIMIT", _positive_int, 10))
ADMIN_LOGIN_COOLOFF_MINUTES = _read("ADMIN_LOGIN_COOLOFF_MINUTES", _positive_int, 60)
AXES_FAILURE_LIMIT = ADMIN_LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=ADMIN_LOGIN_COOLOFF_MINUTES) if ADMIN_LOGIN_COOLOFF_MINUTES else None
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = DEBUG

# --- Security (strict by default outside DEBUG; each can be relaxed from the environment) ---
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if _read("TRUST_X_FORWARDED_PROTO", _bool, False) else None
SECURE_SSL_REDIRECT = _read("SECURE_SSL_REDIRECT", _bool, not DEBUG)
SESSION_COOKIE_SECURE = _read("SESSION_COOKIE_SECURE", _bool, not DEBUG)
CSRF_COOKIE_SECURE = _read("CSRF_COOKIE_SECURE", _bool, not DEBUG)
SECURE_HSTS_SECONDS = _read("SECURE_HSTS_SECONDS", _positive_int, 0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = _read("SECURE_HSTS_INCLUDE_SUBDOMAINS", _bool, not DEBUG)
SECURE_HSTS_PRELOAD = _read("SECURE_HSTS_PRELOAD", _bool, not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
X_FRAME_OPTIONS = "DENY"

# --- Ingestion limits ---
MAX_REQUEST_BYTES = _read("MAX_REQUEST_BYTES", _positive_int, 8 * 1024 * 1024)
# A data set uploaded to POST /api/v1/imports (streamed to disk, never held in memory).
IMPORT_MAX_UPLOAD_BYTES = _read("IMPORT_MAX_UPLOAD_BYTES", _positive_int, 10 * 1024**3)
MAX_TEXT_BYTES = _read("MAX_TEXT_BYTES", _positive_int, 64 * 1024)
MAX_METADATA_BYTES = _read("MAX_METADATA_BYTES", _positive_int, 16 * 1024)
MAX_MESSAGES = _read("MAX_MESSAGES", _positive_int, 256)
MAX_CANDIDATES = _read("MAX_CANDIDATES", _positive_int, 16)
BATCH_MAX_ITEMS = _read("BATCH_MAX_ITEMS", _positive_int, 1000)
# Deepest nesting of a JSON request body (its envelope included); deeper bodies answer 400.
MAX_JSON_DEPTH = _read("MAX_JSON_DEPTH", _positive_int, 32)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BYTES
API_KEY_CACHE_SECONDS = _read("API_KEY_CACHE_SECONDS", _positive_int, 10)
# Throttling per API client (interactions/throttling.py): a burst and a sustained rate per scope,
# and generation requests' n x max_tokens against a token budget. `off` turns one off.
API_THROTTLE_INGEST = _read("API_THROTTLE_INGEST", _rates, ["100/s", "3000/min"])
API_THROTTLE_READ = _read("API_THROTTLE_READ", _rates, ["20/s", "600/min"])
API_THROTTLE_ADMIN = _read("API_THROTTLE_ADMIN", _rates, ["5/s", "120/min"])
API_THROTTLE_GENERATION_TOKENS = _read("API_THROTTLE_GENERATION_TOKENS", _rates, ["4096/s", "32768/min"])
CLIENT_CONTEXT_RETENTION_DAYS = _read("CLIENT_CONTEXT_RETENTION_DAYS", _positive_int, 30)
CURATION_WORKERS = _read("CURATION_WORKERS", _positive_int, 2)
IMPORT_WORKERS = _read("IMPORT_WORKERS", _positive_int, 2)


def _pii_detector(value: str) -> str:
    if value not in ("patterns", "presidio"):
        raise ValueError("expected patterns or presidio")
    return value


# curation.pii reads PII_DETECTOR from the environment itself (it stays free of Django); checked here
# so a typo stops start-up. A presidio whose packages are missing falls back to the patterns, warned.
PII_DETECTOR = _read("PII_DETECTOR", _pii_detector, "patterns")


def _lesson_embedder(value: str) -> str:
    if value not in ("onnx", "torch"):
        raise ValueError("expected onnx or torch")
    return value


# The lessons' sentence encoder (curation/lessons/embedding.py): int8 ONNX, or the float model in torch.
LESSON_EMBEDDER = _read("LESSON_EMBEDDER", _lesson_embedder, "onnx")
BASE_MODEL = _read("BASE_MODEL", str, "")
# Pretraining steps of the offline base model an empty BASE_MODEL builds (training/base_models.py);
# unset: the recipe's default. Each value is its own cached build.
BASE_MODEL_PRETRAIN_STEPS: int | None = _read("BASE_MODEL_PRETRAIN_STEPS", _positive_int, None)
# A training job runs in TRAINING_PROCESSES processes of its own (one per GPU), started with
# `torchrun TRAINING_LAUNCHER_ARGS --nproc_per_node TRAINING_PROCESSES` (training/launch.py).
TRAINING_PROCESSES = _read("TRAINING_PROCESSES", _positive_int, 1)
if TRAINING_PROCESSES < 1:
    raise ImproperlyConfigured("TRAINING_PROCESSES must be at least 1")
TRAINING_LAUNCHER_ARGS = _read("TRAINING_LAUNCHER_ARGS", str, "--standalone")
# /metrics answers only with `Authorization: Bearer <METRICS_TOKEN>`; empty turns it off (404).
METRICS_TOKEN = _read("METRICS_TOKEN", str, "")


def _backend(value: str) -> str:
    if value not in ("local", "remote"):
        raise ValueError("expected local or remote")
    return value


SERVING_BACKEND = _read("SERVING_BACKEND", _backend, "local")
SERVING_REMOTE_URL = _read("SERVING_REMOTE_URL", str, "")
SERVING_REMOTE_API_KEY = _read("SERVING_REMOTE_API_KEY", str, "")
SERVING_REMOTE_TIMEOUT = _read("SERVING_REMOTE_TIMEOUT", _positive_int, 60)
if SERVING_BACKEND == "remote" and not SERVING_REMOTE_URL:
    raise ImproperlyConfigured("SERVING_REMOTE_URL must be set when SERVING_BACKEND is remote")
# vLLM with runtime LoRA loading: ARTIFACTS_DIR as the server sees it (set: the platform loads
# and unloads adapters), the name it serves the base under (empty: the version's base_model, or
# its name when adapters are not managed) and how long a process trusts its list of loaded ones.
SERVING_REMOTE_ADAPTER_ROOT = _read("SERVING_REMOTE_ADAPTER_ROOT", str, "")
SERVING_REMOTE_BASE_MODEL = _read("SERVING_REMOTE_BASE_MODEL", str, "")
SERVING_REMOTE_LIST_SECONDS = _read("SERVING_REMOTE_LIST_SECONDS", _positive_int, 10)
SERVING_MAX_ADAPTERS = _read("SERVING_MAX_ADAPTERS", _positive_int, 8)
SERVING_MAX_TOKENS = _read("SERVING_MAX_TOKENS", _positive_int, 512)
# Local backend: requests waiting for the model per process (more answer 503), sequences per
# generate call, how long the first request of a batch waits for company, threads for torch on
# the CPU (0: the cores divided by SERVING_PROCESSES_PER_HOST), and how long a caller waits.
SERVING_QUEUE_SIZE = max(1, _read("SERVING_QUEUE_SIZE", _positive_int, 64))
SERVING_MAX_BATCH = max(1, _read("SERVING_MAX_BATCH", _positive_int, 16))
SERVING_BATCH_WAIT_MS = _read("SERVING_BATCH_WAIT_MS", _positive_int, 5)
SERVING_TORCH_THREADS = _read("SERVING_TORCH_THREADS", _positive_int, 0)
SERVING_PROCESSES_PER_HOST = max(1, _read("SERVING_PROCESSES_PER_HOST", _positive_int, 1))
SERVING_TIMEOUT_SECONDS = max(1, _read("SERVING_TIMEOUT_SECONDS", _positive_int, 120))
WEBHOOK_URLS = _read("WEBHOOK_URLS", _list, [])
WEBHOOK_TIMEOUT = _read("WEBHOOK_TIMEOUT", _positive_int, 5)
WEBHOOK_RETRIES = _read("WEBHOOK_RETRIES", _positive_int, 3)
WEBHOOK_BACKOFF_SECONDS = _read("WEBHOOK_BACKOFF_SECONDS", float, 2.0)
AUTO_ROLLBACK = _read("AUTO_ROLLBACK", _bool, True)
GUARDRAIL_WINDOW_HOURS = _read("GUARDRAIL_WINDOW_HOURS", _positive_int, 24)
GUARDRAIL_MIN_CALLS = _read("GUARDRAIL_MIN_CALLS", _positive_int, 50)
GUARDRAIL_ALPHA = _read("GUARDRAIL_ALPHA", float, 0.01)
GUARDRAIL_LATENCY_RATIO = _read("GUARDRAIL_LATENCY_RATIO", float, 1.5)


def _share(value: str) -> float:
    share = float(value)
    if not 0 < share <= 1:
        raise ValueError("expected a share above 0 and at most 1")
    return share


def _unit(value: str) -> float:
    number = float(value)
    if not 0 <= number <= 1:
        raise ValueError("expected a number from 0 to 1")
    return number


AUTO_EVALUATE = _read("AUTO_EVALUATE", _bool, True)
ARENA_QUALITY_WEIGHT = _read("ARENA_QUALITY_WEIGHT", _unit, 0.7)
ARENA_REGRESSION_MARGIN = _read("ARENA_REGRESSION_MARGIN", _unit, 0.05)


def _mode(value: str) -> str:
    if value not in ("shadow", "canary"):
        raise ValueError("expected shadow or canary")
    return value


EXPERIMENT_MODE = _read("EXPERIMENT_MODE", _mode, "shadow")
EXPERIMENT_SAMPLE_RATE = _read("EXPERIMENT_SAMPLE_RATE", _share, 0.2)
EXPERIMENT_MIN_TRIALS = _read("EXPERIMENT_MIN_TRIALS", _positive_int, 100)
EXPERIMENT_MAX_TRIALS = _read("EXPERIMENT_MAX_TRIALS", _positive_int, 2000)
EXPERIMENT_MAX_DAYS = _read("EXPERIMENT_MAX_DAYS", _positive_int, 14)
EXPERIMENT_MIN_WIN_RATE = _read("EXPERIMENT_MIN_WIN_RATE", _unit, 0.65)
EXPERIMENT_ALPHA = _read("EXPERIMENT_ALPHA", _share, 0.05)
EXPERIMENT_CACHE_SECONDS = _read("EXPERIMENT_CACHE_SECONDS", _positive_int, 5)
# The staff dashboard's full-table counts (funnel, readiness) are recomputed at most this often.
DASHBOARD_CACHE_SECONDS = _read("DASHBOARD_CACHE_SECONDS", _positive_int, 30)
JUDGE_MODEL = _read("JUDGE_MODEL", str, "")
JUDGE_URL = _read("JUDGE_URL", str, "")
JUDGE_API_KEY = _read("JUDGE_API_KEY", str, "")


def _seconds(value: str) -> float:
    number = float(value)
    if not 0 < number < 10**7:
        raise ValueError("expected a number of seconds above 0")
    return number


# Long jobs (learning_platform/jobs): a running job's heart beats every JOB_HEARTBEAT_SECONDS; the
# reaper (every JOB_REAPER_MINUTES) fails or re-queues one whose heartbeat is older than JOB_STALE_SECONDS.
JOB_HEARTBEAT_SECONDS = _read("JOB_HEARTBEAT_SECONDS", _seconds, 10.0)
JOB_STALE_SECONDS = _read("JOB_STALE_SECONDS", _seconds, 120.0)
if JOB_STALE_SECONDS < 3 * JOB_HEARTBEAT_SECONDS:
    raise ImproperlyConfigured("JOB_STALE_SECONDS must be at least 3 x JOB_HEARTBEAT_SECONDS (a blip must not kill a job)")
JOB_REAPER_MINUTES = _read("JOB_REAPER_MINUTES", _positive_int, 1) or 1
JOB_MAX_ATTEMPTS = _read("JOB_MAX_ATTEMPTS", _positive_int, 3)
ARTIFACTS_DIR = Path(_read("ARTIFACTS_DIR", str, str(VAR_DIR / "artifacts")))

REST_FRAMEWORK: dict[str, Any] = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["interactions.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["interactions.auth.HasScope"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["learning_platform.parsers.FastJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "learning_platform.errors.api_exception_handler",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_THROTTLE_CLASSES": ["interactions.throttling.ClientRateThrottle"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "URL_FORMAT_OVERRIDE": None,  # ?format= names an export format, not a renderer
}

SPECTACULAR_SETTINGS = {
    "TITLE": "learning_platform API",
    "DESCRIPTION": "Log LLM interactions and feedback; curate, train, evaluate and serve models.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "learning_platform.schema.add_error_responses"],
    "ENUM_NAME_OVERRIDES": {
        "JobStatusEnum": "curation.models.CurationRun.Status",  # training jobs share the same states
        "DatasetStatusEnum": "curation.models.Dataset.Status",
        "RecordedStatusEnum": ["created", "replayed"],
        "ExperimentStatusEnum": "abtesting.models.Experiment.Status",
        "ExperimentRecommendationEnum": "abtesting.models.Experiment.Recommendation",
        "ExampleKindEnum": "curation.models.TrainingExample.Kind",  # examples, datasets and conflicts
        "ConflictKeepEnum": "curation.models.DuplicateConflict.Keep",
    },
}

# --- Task queue (django-q2). ORM broker by default; REDIS_URL switches to Redis. ---
Q_TIMEOUT = _read("Q_TIMEOUT", _positive_int, 6 * 3600)
Q_CLUSTER: dict[str, Any] = {
    "name": "learning_platform",
    "workers": _read("Q_WORKERS", _positive_int, 2),
    "timeout": Q_TIMEOUT,
    "retry": Q_TIMEOUT + 120,  # must exceed timeout, or a long task is handed out twice
    "max_attempts": _read("Q_MAX_ATTEMPTS", _positive_int, 3),
    "queue_limit": 50,
    "save_limit": 1000,
    "catch_up": False,
    "ack_failures": True,
    "sync": _read("Q_SYNC", _bool, False),
    "label": "Task queue",
    "daemonize_workers": False,  # tasks may start processes (parallel curation, training)
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

LOG_LEVEL = _read("LOG_LEVEL", lambda v: v.upper(), "INFO")
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise ImproperlyConfigured(f"LOG_LEVEL={LOG_LEVEL!r} is not valid: expected DEBUG, INFO, WARNING or ERROR")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # user ids in paths (Django's "Not Found: /api/v1/subjects/...") become {user_id}
    "filters": {"redact_user_ids": {"()": "learning_platform.redaction.RedactFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact_user_ids"]}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Django's own handlers (its DEBUG console, runserver's request lines) give way to ours
        "django": {"handlers": [], "propagate": True},
        "django.server": {"handlers": [], "propagate": True},
        # httpx logs every request at INFO (the remote serving backend and webhooks send many)
        "django.db.backends": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "axes.apps": {"level": "WARNING"},  # its version banner at every start
    },
}
