"""Settings, read from the environment in one place.

With nothing set you get the *embedded default*: SQLite, local-memory cache, the in-memory channel
layer and Celery tasks run inline, so `make demo` needs no services. Production values
(`DEBUG=false`) have no defaults: a missing one stops start-up with a one-line error naming it.
"""

from pathlib import Path
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured
from django_guid.integrations import CeleryIntegration

from matchmaking_site import gc_tuning, redis_urls

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A .env file next to manage.py is read if present; real environment variables win.
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=True)

MISSING_IN_PRODUCTION = "{name} must be set in the environment when DEBUG is false"


def _required_in_production(name: str, default):
    """Return the variable, or `default` in development; refuse to start without it in production."""
    if name in env.ENVIRON and env.str(name).strip():
        return env.str(name)
    if DEBUG:
        return default
    raise ImproperlyConfigured(MISSING_IN_PRODUCTION.format(name=name))


SECRET_KEY = _required_in_production("SECRET_KEY", "django-insecure-embedded-default-do-not-deploy")
ALLOWED_HOSTS = [
    h.strip()
    for h in _required_in_production("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver").split(",")
    if h.strip()
]
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "channels",
    "django_guid",
    "corsheaders",
    "events",
    "recommendations",
    "recommendations.backends.personalize",
    # After events and recommendations: it re-registers the event admin with the dashboard.
    "dashboard",
]

MIDDLEWARE = [
    "matchmaking_site.middleware.HealthCheckMiddleware",
    "django_guid.middleware.guid_middleware",
    "matchmaking_site.middleware.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "matchmaking_site.middleware.ApiJsonErrorsMiddleware",
    "matchmaking_site.middleware.RefuseNulMiddleware",
    "matchmaking_site.middleware.DatabaseUnavailableMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "matchmaking_site.middleware.LoginRateLimitMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "matchmaking_site.urls"

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

WSGI_APPLICATION = "matchmaking_site.wsgi.application"
ASGI_APPLICATION = "matchmaking_site.asgi.application"

# --- Database -------------------------------------------------------------------------------------
DATABASES = {"default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env.bool("DATABASE_POOL", default=False):
    # Under ASGI (daphne) Django runs each request's sync code in a thread of its own, and
    # connections are per thread, so persistent connections are never reused: every request paid
    # a new PostgreSQL connection (measured by benchmarks/serve.py). A psycopg pool shares them.
    # Django refuses persistent connections together with a pool, so CONN_MAX_AGE stays 0.
    DATABASES["default"]["OPTIONS"] = {
        "pool": {
            "min_size": env.int("DATABASE_POOL_MIN_SIZE", default=2),
            "max_size": env.int("DATABASE_POOL_MAX_SIZE", default=10),
            "timeout": env.float("DATABASE_POOL_TIMEOUT", default=10.0),
        }
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env.bool(
    "DATABASE_PGBOUNCER", default=False
):
    # Behind PgBouncer in transaction pooling (docs/scaling.md): PgBouncer is the pool, so no pool
    # here and no persistent connections; a server connection serves one transaction, so nothing
    # may outlive one: no server-side cursors (Django's documentation). Statements are not
    # prepared anyway: Django binds parameters on the client unless `server_side_binding` is set.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Without a pool, no persistent connections by default: under ASGI each request runs in a
    # thread of its own, so a persistent connection is never reused and outlives its thread (a
    # load run exhausted PostgreSQL's connection slots that way). Django's documentation says the
    # same: under ASGI, disable persistent connections and use a pool (DATABASE_POOL=true).
    # Health checks keep a PostgreSQL restart to failed requests while it is down.
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default serves concurrent requests too (daphne runs each in a thread): writers
    # queue for the file's lock (IMMEDIATE, a busy timeout) instead of failing with "database is
    # locked" when a reader upgrades, and readers do not block the writer (WAL). Tests get a file
    # of their own: Django's in-memory test database shares one cache, whose table locks fail at
    # once whatever the timeout, so concurrency could not be tested on it.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["TEST"] = {"NAME": str(Path(DATABASES["default"]["NAME"]).with_suffix(".test.sqlite3"))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache, live-push state, channel layer, Celery broker ----------------------------------
# One REDIS_URL serves every role; each role may have its own (matchmaking_site/redis_urls.py, which
# also reads sentinel:// URLs): the cache may evict (allkeys-lru), the live-push state, the channel
# layer and the broker must not (noeviction).
REDIS_URL = env.str("REDIS_URL", default="")
# (Set but empty is unset: a compose file passes `${CACHE_REDIS_URL:-}` through as "".)
CACHE_REDIS_URL = env.str("CACHE_REDIS_URL", default="") or REDIS_URL
LIVE_REDIS_URL = env.str("LIVE_REDIS_URL", default="") or REDIS_URL
CHANNEL_LAYER_REDIS_URL = env.str("CHANNEL_LAYER_REDIS_URL", default="") or REDIS_URL

# Without Redis (the embedded default), and named so that tests can run under it.
EMBEDDED_CACHES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    # The live push's state, apart from the default cache (300 entries, culled when full: a
    # busy demo culled open widgets' state there). One entry per open widget and per attendee
    # pushed to, each expiring after a day: this bound is never reached by one process.
    "live": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "live",
        "OPTIONS": {"MAX_ENTRIES": 1_000_000},
    },
}


def _from_url(read, url: str, name: str):
    """`read(url, name=name)` (a `redis_urls` reader), its ValueError as start-up's one-line error."""
    try:
        return read(url, name=name)
    except ValueError as exc:
        raise ImproperlyConfigured(str(exc)) from None


def _redis_cache(url: str, name: str) -> dict[str, Any]:
    _from_url(redis_urls.parse_sentinel, url, name)  # a malformed sentinel:// URL stops start-up
    return {
        # Django's RedisCache sharing one connection pool per process (redis_cache.py), degrading
        # to "no cache" while Redis is unreachable (cache.py).
        "BACKEND": "matchmaking_site.cache.ResilientRedisCache",
        "LOCATION": url,
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="mm"),
    }


CACHES = {
    "default": _redis_cache(CACHE_REDIS_URL, "CACHE_REDIS_URL") if CACHE_REDIS_URL else EMBEDDED_CACHES["default"],
    # The live push's state (open widgets, the list each was last sent, per-attendee locks): kept
    # apart from the caches that churn; its Redis must not evict (`noeviction`, Redis's default
    # policy), or an open widget stops hearing pushes until it reconnects.
    "live": _redis_cache(LIVE_REDIS_URL, "LIVE_REDIS_URL") if LIVE_REDIS_URL else EMBEDDED_CACHES["live"],
}
if CHANNEL_LAYER_REDIS_URL:
    _layer_host = _from_url(redis_urls.channel_layer_host, CHANNEL_LAYER_REDIS_URL, "CHANNEL_LAYER_REDIS_URL")
    CHANNEL_LAYERS = {
        "default": {
            # channels_redis's layer with a pool that waits at its cap (matchmaking_site/layer.py).
            "BACKEND": "matchmaking_site.layer.WaitingPoolRedisChannelLayer",
            "CONFIG": {"hosts": [_layer_host], "prefix": env.str("CHANNEL_LAYER_PREFIX", default="mm")},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
# Connections of the channel layer's pool per event loop, and how long a send, a join or a leave
# waits for one at that cap before it fails.
CHANNEL_LAYER_MAX_CONNECTIONS = env.int("CHANNEL_LAYER_MAX_CONNECTIONS", default=100)
CHANNEL_LAYER_POOL_TIMEOUT = env.float("CHANNEL_LAYER_POOL_TIMEOUT", default=10.0)

# --- Celery ---------------------------------------------------------------------------------------
CELERY_BROKER_URL, _broker_options = _from_url(
    redis_urls.broker_settings,
    env.str("CELERY_BROKER_URL", default="") or REDIS_URL or "memory://",
    "CELERY_BROKER_URL",
)
# Embedded default: no broker, so tasks run inline in the calling process.
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=CELERY_BROKER_URL == "memory://")
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Two queues: "celery" for what must be quick (ingestion, live pushes, phases, the funnel, the
# forwarding to Personalize) and CELERY_TRAINING_QUEUE for what runs for seconds or hours
# (trainings, batches, Personalize runs), so that a training never delays an interaction's push.
# Every worker command names its queues: `-Q celery` and `-Q training` (Procfile, compose).
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TRAINING_QUEUE = env.str("CELERY_TRAINING_QUEUE", default="training")
TRAINING_TASKS = (
    "recommendations.train_event",
    "recommendations.batch_event",
    "personalize.advance_run",
    "personalize.advance_due_runs",
    "personalize.retrain_if_due",
    "personalize.batch_if_due",
    "personalize.teardown_if_due",
)
CELERY_TASK_ROUTES = {name: {"queue": CELERY_TRAINING_QUEUE} for name in TRAINING_TASKS}
# Webhook deliveries (events.webhooks) run on the quick queue: each waits at most this long for the
# platform, and a failing endpoint's new messages wait for its backoff instead of each timing out.
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=5.0)
# Webhooks go to public addresses only (events.webhooks): true lets them reach this network's own.
WEBHOOK_ALLOW_PRIVATE_ADDRESSES = env.bool("WEBHOOK_ALLOW_PRIVATE_ADDRESSES", default=False)
# A dead broker must not hang a request: fail fast, the outbox sweeper re-sends later.
CELERY_BROKER_CONNECTION_TIMEOUT = env.float("CELERY_BROKER_CONNECTION_TIMEOUT", default=2.0)
CELERY_BROKER_TRANSPORT_OPTIONS = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, **_broker_options}
CELERY_TASK_PUBLISH_RETRY = False

# --- Amazon Personalize backend -------------------------------------------------------------------
# Credentials come from the usual boto3 chain (environment, shared files, instance role).
AWS_REGION = env.str("AWS_REGION", default=env.str("AWS_DEFAULT_REGION", default=""))
PERSONALIZE_ROLE_ARN = env.str("PERSONALIZE_ROLE_ARN", default="")
PERSONALIZE_BUCKET = env.str("PERSONALIZE_BUCKET", default="")
PERSONALIZE_PREFIX = env.str("PERSONALIZE_PREFIX", default="matchmaking/")
# Scheduled retrains during the live window: how often to look, and how many new qualifying
# interactions make a retrain worth its cost (a SIMS training is billed by the hour).
PERSONALIZE_RETRAIN_HOURS = env.int("PERSONALIZE_RETRAIN_HOURS", default=6)
PERSONALIZE_RETRAIN_MIN_NEW_INTERACTIONS = env.int("PERSONALIZE_RETRAIN_MIN_NEW_INTERACTIONS", default=500)

# --- Auth, i18n, static ---------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"

# Attendee pages, the widget, reasons and emails speak English and French (`locale/`); the switcher
# on every attendee page sets the cookie (and the attendee's `language`, for their emails).
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("fr", "Français")]
LOCALE_PATHS = [BASE_DIR / "locale"]
LANGUAGE_COOKIE_SAMESITE = "Lax"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]

# --- REST API -------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    # JSON bodies are capped in size and nesting before they are parsed (a 5,000-deep body was a 500).
    "DEFAULT_PARSER_CLASSES": [
        "matchmaking_site.jsonlimits.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "matchmaking_site.schema.AutoSchema",
    # Field errors quote at most 100 characters of the bad value.
    "EXCEPTION_HANDLER": "matchmaking_site.exceptions.exception_handler",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "events.api.auth.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "matchmaking_site.pagination.BoundedLimitOffsetPagination",
    "PAGE_SIZE": 100,
    # Rates per API key (or user, or client address). Views opt in with `throttle_scope`; an excess
    # gets 429 with a Retry-After header. Sized for a platform sending ten 500-item batches a second.
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.ScopedRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "ingest": env.str("THROTTLE_INGEST", default="1200/min"),
        "token": env.str("THROTTLE_TOKEN", default="120/min"),
        "attendee": env.str("THROTTLE_ATTENDEE", default="600/min"),
    },
}
# --- Email (events.notifications, recommendations.digest) ---------------------------------------
# EMAIL_URL picks the backend: the console by default (make demo prints mails), smtp+tls://user:pass@host:587
# in production (django-environ's email_url). Links in mails are made absolute with SITE_URL.
vars().update(env.email_url_config(env.str("EMAIL_URL", default="") or "consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="") or "Matchmaking <noreply@localhost>"
SITE_URL = (env.str("SITE_URL", default="") or "http://127.0.0.1:8000").rstrip("/")
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)

# Attendee sign-in links (manage.py attendee_login_link): single use, valid this many minutes.
LOGIN_LINK_MINUTES = env.int("LOGIN_LINK_MINUTES", default=30)
# Admin (and any other) login attempts per client address and per username, before 429.
LOGIN_RATE_LIMIT = env.int("LOGIN_RATE_LIMIT", default=10)
LOGIN_RATE_WINDOW_SECONDS = env.int("LOGIN_RATE_WINDOW_SECONDS", default=300)
# Request bodies: a 500-item ingestion batch is ~150 KB; anything past this is refused before parsing.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=2_621_440)
SPECTACULAR_SETTINGS = {
    "TITLE": "Attendee matchmaking API",
    "DESCRIPTION": "People-to-meet suggestions for virtual and hybrid events.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI and ReDoc from our own static files (drf-spectacular-sidecar), not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Three choice sets share the field name "status" (an interaction's, a connection's, an upserted
    # fact's): named here, not numbered by a hash.
    "ENUM_NAME_OVERRIDES": {"UpsertStatusEnum": "events.upserts.STATUSES"},
}

# --- Production hardening -------------------------------------------------------------------------
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }

# --- Logs, request ids, metrics, errors (see matchmaking_site/metrics.py and health.py) ---------------
# JSON lines in production (one object per line: time, level, logger, message, request_id and the
# record's extra fields), readable text in development. Every line logged while a request is
# handled, and by the Celery tasks it enqueued, carries its request id (django-guid): the
# X-Request-ID header the proxy sent (a UUID), or a new one, returned in the response.
LOG_FORMAT = env.str("LOG_FORMAT", default="plain" if DEBUG else "json")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, got {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "django_guid.log_filters.CorrelationId", "correlation_id_field": "request_id"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s [%(request_id)s] %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["request_id"]}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "django_guid": {"level": "WARNING"},
        # One line per request (RequestLogMiddleware) with ACCESS_LOG=true. Off by default: under
        # `make load` it cost 15 % of the suggestions endpoint's throughput (304 against 360 req/s
        # at a fixed 500, 30 s runs, 2026-12-06), and the request metrics (latency by route) and
        # the proxy's own access log cover what it says; the request id is on every other line.
        "matchmaking.access": {"level": "INFO" if env.bool("ACCESS_LOG", default=False) else "WARNING"},
    },
}

SENTRY_DSN = env.str("SENTRY_DSN", default="")
DJANGO_GUID = {
    "GUID_HEADER_NAME": "X-Request-ID",
    "VALIDATE_GUID": True,  # anything but a UUID is replaced: no log injection through the header
    "EXPOSE_HEADER": False,  # CORS headers are django-cors-headers' (CORS_EXPOSE_HEADERS)
    # The id travels in each task's headers; the worker's lines carry the id of the request that
    # enqueued the task (a scheduled task gets a new one).
    "INTEGRATIONS": [CeleryIntegration(use_django_logging=True, log_parent=True)],
}
# CORS (django-cors-headers) only where `recommendations.api.cors.widget_calls_only` says: the
# widget's attendee-token calls, from any origin, never with credentials.
CORS_URLS_REGEX = r"(?!)"  # no path by itself: the receiver decides
CORS_ALLOW_ALL_ORIGINS = True
CORS_ALLOW_CREDENTIALS = False
CORS_ALLOW_HEADERS = ("authorization", "content-type")
CORS_ALLOW_METHODS = ("GET", "POST", "PATCH", "OPTIONS")
CORS_PREFLIGHT_MAX_AGE = 600
CORS_EXPOSE_HEADERS = ("X-Request-ID",)

# Bearer token for GET /metrics (Prometheus); without one the endpoint is open in development and
# absent in production.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# Error reports to Sentry when a DSN is set (Django, Celery; no personal data is sent).
if SENTRY_DSN:
    from matchmaking_site.sentry import init_sentry

    init_sentry(
        dsn=SENTRY_DSN,
        environment=env.str("SENTRY_ENVIRONMENT", default="production" if not DEBUG else "development"),
        traces_sample_rate=env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0),
    )

# --- Recommendation backends (dotted paths; see recommendations/backends.py) ----------------------
RECOMMENDATION_BACKENDS = {
    "rules": "recommendations.backends.rules.RulesBackend",
    "local": "recommendations.backends.local.backend.LocalModelBackend",
    "personalize": "recommendations.backends.personalize.backend.PersonalizeBackend",
    "popularity": "recommendations.backends.popularity.PopularityBackend",
}

# --- Serving and training (see recommendations/jobs/training.py and recommendations/jobs/schedules.py) ---------
# Minutes between scheduled retrains during the live window (the default of new events' schedules).
RECOMMENDATION_TRAIN_EVERY_MINUTES = env.int("RECOMMENDATION_TRAIN_EVERY_MINUTES", default=15)
# A scheduled retrain runs only when this many new qualifying interactions arrived since the last
# version: below it the model would barely move, and the fit costs CPU the live event needs.
RECOMMENDATION_RETRAIN_MIN_NEW_INTERACTIONS = env.int("RECOMMENDATION_RETRAIN_MIN_NEW_INTERACTIONS", default=500)
# The offline metric the publish gate compares (a key of ModelVersion.metrics).
# A train or batch run still "running" after this long was lost with its worker: marked failed.
RECOMMENDATION_STALE_RUN_SECONDS = env.int("RECOMMENDATION_STALE_RUN_SECONDS", default=2 * 3600)
RECOMMENDATION_GATE_METRIC = env.str("RECOMMENDATION_GATE_METRIC", default="recall_at_10")

# Threads that compute live pushes off the request thread (0: inline, as tests and commands want).
LIVE_PUSH_THREADS = env.int("LIVE_PUSH_THREADS", default=4)

# The serving processes' garbage collector (matchmaking_site/gc_tuning.py: full collections paused
# every thread for up to 335 ms under load): freezing what start-up loaded, and the thresholds
# (default Python's own: raised to 50000,20,20 they made short requests' p99 worse).
GC_FREEZE = env.bool("GC_FREEZE", default=True)
try:
    # (Set but empty is unset, as for the Redis URLs above.)
    GC_THRESHOLDS = gc_tuning.parse_thresholds(env.str("GC_THRESHOLDS", default="") or "off")
except ValueError as exc:
    raise ImproperlyConfigured(str(exc)) from None

# Where trained local models are stored (one directory per event and version). On several machines
# without MODEL_ARTIFACT_BUCKET this must be a shared volume: every serving process loads the
# published version from here.
MODEL_ARTIFACT_ROOT = Path(env.str("MODEL_ARTIFACT_ROOT", default=str(BASE_DIR / "var" / "models")))
# Or in object storage, so that no shared disk is needed (recommendations/backends/local/artifacts.py):
# the training uploads each version there, a process without it downloads it into its own root.
MODEL_ARTIFACT_BUCKET = env.str("MODEL_ARTIFACT_BUCKET", default="")
MODEL_ARTIFACT_PREFIX = env.str("MODEL_ARTIFACT_PREFIX", default="models/")
# An S3-compatible store other than AWS (MinIO, Ceph; the tests' moto server).
AWS_S3_ENDPOINT_URL = env.str("AWS_S3_ENDPOINT_URL", default="")
# Overrides of the local engine's settings (recommendations.engine.EngineConfig), as JSON.
LOCAL_MODEL_CONFIG = env.json("LOCAL_MODEL_CONFIG", default={})
# Serve a platform's cached suggestions request in front of Django (recommendations/api/fastpath.py).
API_FAST_PATH = env.bool("API_FAST_PATH", default=True)
# Seconds a process keeps its index of an event's declared data (rules engine) before rebuilding it.
RULES_INDEX_SECONDS = env.int("RULES_INDEX_SECONDS", default=60)
