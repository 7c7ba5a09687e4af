"""Cutout's one settings module: every knob is an environment variable (see README)."""

import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from webapp.env import (
    default_storage_from_env,
    env_bool,
    env_decimal,
    env_float,
    env_int,
    env_list,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


DATA_DIR = Path(env_str("CUTOUT_DATA_DIR", str(BASE_DIR / "var"))).resolve()
SHARED_DIR = Path(env_str("CUTOUT_SHARED_DIR", str(BASE_DIR.parent / "shared"))).resolve()

DEBUG = env_bool("DJANGO_DEBUG", False)


def _secret_key() -> str:
    key = env_str("DJANGO_SECRET_KEY")
    if key:
        if not DEBUG and (len(key) < 32 or key.startswith("django-insecure")):
            raise ImproperlyConfigured("DJANGO_SECRET_KEY is a placeholder; set a long random key")
        return key
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off")
    # Debug only: a key generated once and kept in the data folder, so sessions survive restarts.
    path = DATA_DIR / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
# A key from the data folder is this host's alone (webapp/checks.py refuses it with CUTOUT_HOSTS).
SECRET_KEY_FROM_DATA_DIR = not env_str("DJANGO_SECRET_KEY")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_tasks",
    "django_tasks_db",
    "webapp",
    "removal",
    "billing",
    "batches",
]

MIDDLEWARE = [
    "webapp.middleware.RequestIdMiddleware",
    "webapp.bodies.BodyLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "webapp.login.DeviceCookieMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "webapp.urls"
WSGI_APPLICATION = "webapp.wsgi.application"
ASGI_APPLICATION = "webapp.asgi.application"

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

DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
else:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "db.sqlite3",
            # IMMEDIATE takes the write lock at BEGIN, so select_for_update-style
            # reserve/settle cannot deadlock on SQLite's lock upgrade.
            "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Sites (or test servers) that share one Redis database keep their limits apart by prefix.
CACHES["default"]["KEY_PREFIX"] = env_str("CUTOUT_CACHE_PREFIX")
# What every process of the site must read alike even without Redis (the upstream's health,
# written by the web processes and read by `manage.py upstream_status`): Redis when there is
# one, else files in the data folder.
CACHES["shared"] = (
    dict(CACHES["default"])
    if REDIS_URL
    else {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": DATA_DIR / "cache",
        "KEY_PREFIX": CACHES["default"]["KEY_PREFIX"],
    }
)

AUTH_USER_MODEL = "webapp.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = DATA_DIR / "media"

AWS_STORAGE_BUCKET_NAME = env_str("AWS_STORAGE_BUCKET_NAME")
STORAGES = {
    "default": default_storage_from_env(),
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage",
    },
}

# Without DJANGO_EMAIL_BACKEND, debug prints mail to the console and production drops it: a
# password-reset link must never land in a log. webapp/checks.py warns about the latter.
EMAIL_BACKEND = env_str("DJANGO_EMAIL_BACKEND") or (
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.dummy.EmailBackend"
)
EMAIL_HOST = env_str("DJANGO_EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("DJANGO_EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("DJANGO_EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("DJANGO_EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("DJANGO_EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DJANGO_DEFAULT_FROM_EMAIL", "Cutout <noreply@localhost>")

CUTOUT_HTTPS = env_bool("CUTOUT_HTTPS", False)
if CUTOUT_HTTPS:
    SECURE_SSL_REDIRECT = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = 31536000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    # Health checks come from the load balancer over plain HTTP.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
    # Submitting the domain to browsers' HSTS preload list binds every subdomain for months:
    # the operator's call, made outside Cutout, so `check --deploy` does not ask for it.
    SILENCED_SYSTEM_CHECKS = ["security.W021"]

# --- Cutout ---------------------------------------------------------------------------------
# How many machines run this site's app servers and batch workers. Above 1, everything a second
# host needs must be shared (database, cache, file storage, secret key): webapp/checks.py refuses
# to start with a local-only backend (README, "Running on several machines").
CUTOUT_HOSTS = env_int("CUTOUT_HOSTS", 1)
CUTOUT_ENGINE = env_str("CUTOUT_ENGINE", "local")
if CUTOUT_ENGINE not in {"local", "pixian"}:
    raise ImproperlyConfigured("CUTOUT_ENGINE must be 'local' or 'pixian'")
CUTOUT_MODEL = env_str("CUTOUT_MODEL", "u2net")
CUTOUT_MODELS_DIR = DATA_DIR / "models"
CUTOUT_INFERENCE_THREADS = env_int("CUTOUT_INFERENCE_THREADS", 2)
# auto: bfloat16 through onnxruntime's OpenVINO provider on a CPU with native bfloat16 (AMX,
# AVX-512 BF16), else float32 on its CPU provider; bf16 or f32 to choose (engine/segment.py).
CUTOUT_INFERENCE_PRECISION = env_str("CUTOUT_INFERENCE_PRECISION", "auto")
CUTOUT_CORES = _cores()
# An operator's own ONNX weights (e.g. ISNet or BiRefNet) in the models folder, used when
# CUTOUT_MODEL names no built-in model: input side in pixels and the preprocessing
# (`u2net`: /max then ImageNet mean/std; `imagenet`: /255 then ImageNet; `half`: /255 - 0.5).
CUTOUT_CUSTOM_MODEL_FILE = env_str("CUTOUT_CUSTOM_MODEL_FILE")
CUTOUT_CUSTOM_MODEL_INPUT_SIZE = env_int("CUTOUT_CUSTOM_MODEL_INPUT_SIZE", 1024)
CUTOUT_CUSTOM_MODEL_NORMALISATION = env_str("CUTOUT_CUSTOM_MODEL_NORMALISATION", "imagenet")
CUTOUT_MAX_UPLOAD_MB = env_int("CUTOUT_MAX_UPLOAD_MB", 50)
# Django's own limits are raised to the API's cap so that the API, not Django, answers oversize.
DATA_UPLOAD_MAX_MEMORY_SIZE = CUTOUT_MAX_UPLOAD_MB * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = CUTOUT_MAX_UPLOAD_MB * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000
# Most boxes in one request (remove.bg `roi`, Baidu `control`): each runs the model once.
CUTOUT_MAX_REGIONS = env_int("CUTOUT_MAX_REGIONS", 10)
CUTOUT_ALLOW_LOOPBACK_URLS = env_bool("CUTOUT_ALLOW_LOOPBACK_URLS", False)
# image.url downloads (removal/fetch.py): one deadline for the whole fetch, and a size cap.
CUTOUT_URL_TIMEOUT_S = env_float("CUTOUT_URL_TIMEOUT_S", 20.0)
CUTOUT_URL_MAX_MB = env_int("CUTOUT_URL_MAX_MB", 20)
CUTOUT_UPSTREAM_URL = env_str("CUTOUT_UPSTREAM_URL")
CUTOUT_UPSTREAM_ID = env_str("CUTOUT_UPSTREAM_ID")
CUTOUT_UPSTREAM_SECRET = env_str("CUTOUT_UPSTREAM_SECRET")
CUTOUT_UPSTREAM_DEADLINE_S = env_float("CUTOUT_UPSTREAM_DEADLINE_S", 170.0)
# Pixian's linear step after a 429 (5 s, 10 s, 15 s ...); tries after 502/503/504 or no answer.
CUTOUT_UPSTREAM_BACKOFF_S = env_float("CUTOUT_UPSTREAM_BACKOFF_S", 5.0)
CUTOUT_UPSTREAM_MAX_TRIES = env_int("CUTOUT_UPSTREAM_MAX_TRIES", 3)
CUTOUT_RESELLER_MARKUP = env_decimal("CUTOUT_RESELLER_MARKUP", "1.0")
# Upstream calls in flight, site-wide, and the share of them one account may hold.
CUTOUT_UPSTREAM_CONCURRENCY = env_int("CUTOUT_UPSTREAM_CONCURRENCY", 16)
CUTOUT_UPSTREAM_ACCOUNT_SHARE = env_float("CUTOUT_UPSTREAM_ACCOUNT_SHARE", 0.5)
if CUTOUT_UPSTREAM_CONCURRENCY < 1 or not 0 < CUTOUT_UPSTREAM_ACCOUNT_SHARE <= 1:
    raise ImproperlyConfigured(
        "CUTOUT_UPSTREAM_CONCURRENCY must be at least 1 and CUTOUT_UPSTREAM_ACCOUNT_SHARE in (0, 1]"
    )
# `local`: a call the upstream cannot serve (unreachable, 5xx, out of credits) is served by
# the local engine instead.
CUTOUT_RESELLER_FALLBACK = env_str("CUTOUT_RESELLER_FALLBACK", "")
if CUTOUT_RESELLER_FALLBACK not in {"", "off", "local"}:
    raise ImproperlyConfigured("CUTOUT_RESELLER_FALLBACK must be 'local' or empty")
# Prices in credits (billing/pricing.py is the one place that applies them).
CUTOUT_CREDITS_PER_IMAGE = env_decimal("CUTOUT_CREDITS_PER_IMAGE", "1")
CUTOUT_CREDITS_PER_PREVIEW = env_decimal("CUTOUT_CREDITS_PER_PREVIEW", "0.25")
CUTOUT_GRANT_VALIDITY_DAYS = env_int("CUTOUT_GRANT_VALIDITY_DAYS", 365)
STRIPE_SECRET_KEY = env_str("STRIPE_SECRET_KEY")
STRIPE_WEBHOOK_SECRET = env_str("STRIPE_WEBHOOK_SECRET")
# Tests point this at a local stand-in server; production leaves the default.
STRIPE_API_BASE = env_str("STRIPE_API_BASE", "https://api.stripe.com")

# Failed log-ins allowed per account and per address in the window.
CUTOUT_LOGIN_FAILURE_LIMIT = env_int("CUTOUT_LOGIN_FAILURE_LIMIT", 10)
CUTOUT_LOGIN_FAILURE_WINDOW_S = env_int("CUTOUT_LOGIN_FAILURE_WINDOW_S", 600)
# Failed API authentications allowed per address per minute, then 429.
CUTOUT_API_AUTH_FAILURE_LIMIT = env_int("CUTOUT_API_AUTH_FAILURE_LIMIT", 30)
# Per account, shared by every worker through the cache (removal/limits.py); 0 turns one off.
CUTOUT_RATE_LIMIT_PER_MINUTE = env_int("CUTOUT_RATE_LIMIT_PER_MINUTE", 600)
CUTOUT_CONCURRENCY_LIMIT = env_int("CUTOUT_CONCURRENCY_LIMIT", 10)

# --- serving (README, "Production") ---------------------------------------------------------
# Engine processes per web worker (removal/engine/pool.py): decoding and inference run there,
# where a job past CUTOUT_ENGINE_TIMEOUT_S is killed. 0 runs the engine in the web process
# itself (development and the test suite), without that backstop.
CUTOUT_ENGINE_PROCESSES = env_int(
    "CUTOUT_ENGINE_PROCESSES", max(1, _cores() // max(1, CUTOUT_INFERENCE_THREADS))
)
CUTOUT_ENGINE_TIMEOUT_S = env_float("CUTOUT_ENGINE_TIMEOUT_S", 60.0)
# The longest a request may take end to end (the proxy's read time-out; above the upstream
# deadline plus the fetch of image.url); a concurrency slot held by a dead request expires then.
CUTOUT_REQUEST_TIMEOUT_S = env_int("CUTOUT_REQUEST_TIMEOUT_S", 240)
# Free work (test mode, try-outs): in flight site-wide, and megapixels per account per minute.
CUTOUT_FREE_CONCURRENCY = env_int("CUTOUT_FREE_CONCURRENCY", max(1, CUTOUT_ENGINE_PROCESSES - 1))
CUTOUT_FREE_MEGAPIXELS_PER_MINUTE = env_int("CUTOUT_FREE_MEGAPIXELS_PER_MINUTE", 100)
# Proxies in front of Cutout whose X-Forwarded-For entries are trusted (0: the socket's peer).
CUTOUT_TRUSTED_PROXY_HOPS = env_int("CUTOUT_TRUSTED_PROXY_HOPS", 0)
# The reverse proxy's (nginx's) time-out for reading a client's headers and each body read.
CUTOUT_CLIENT_TIMEOUT_S = env_int("CUTOUT_CLIENT_TIMEOUT_S", 10)
# The website keeps each upload's original and alpha this long, so that re-rendering it with
# other options is free; `manage.py purge_results` deletes them afterwards.
CUTOUT_UPLOAD_RETENTION_HOURS = env_int("CUTOUT_UPLOAD_RETENTION_HOURS", 24)
# Visitors' try-outs on the home page, per client address and day (removal/tryouts.py).
CUTOUT_TRYOUT_PER_DAY = env_int("CUTOUT_TRYOUT_PER_DAY", 10)
# remove.bg's /v1.0/improve submissions, kept for the operator (in the admin) this long.
CUTOUT_IMPROVE_RETENTION_DAYS = env_int("CUTOUT_IMPROVE_RETENTION_DAYS", 30)
# The per-call records (no image data); at least 31 days, so that a 30-day chart is whole.
CUTOUT_CALL_RECORD_RETENTION_DAYS = env_int("CUTOUT_CALL_RECORD_RETENTION_DAYS", 90)
if CUTOUT_CALL_RECORD_RETENTION_DAYS < 31:
    raise ImproperlyConfigured("CUTOUT_CALL_RECORD_RETENTION_DAYS must be at least 31")

# Batches (batches/): items run on django-tasks' database backend, on the project's database;
# workers start with `manage.py db_worker` (README, "Batch API").
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}
CUTOUT_BATCH_TEST_ITEMS = env_int("CUTOUT_BATCH_TEST_ITEMS", 20)
CUTOUT_BATCH_RETENTION_HOURS = env_int("CUTOUT_BATCH_RETENTION_HOURS", 24)
# Per account: a finished item whose result would pass this fails with 6008.
CUTOUT_BATCH_MAX_STORED_MB = env_int("CUTOUT_BATCH_MAX_STORED_MB", 1024)
# A worker holds an item this long and renews it every third of it; an item whose worker died
# is picked up again once its lease has run out.
CUTOUT_BATCH_LEASE_S = env_int("CUTOUT_BATCH_LEASE_S", 60)
CUTOUT_BATCH_MAX_ATTEMPTS = env_int("CUTOUT_BATCH_MAX_ATTEMPTS", 3)
CUTOUT_BATCH_RETRY_BASE_S = env_float("CUTOUT_BATCH_RETRY_BASE_S", 5.0)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "removal.auth.BasicApiKeyAuthentication",
        "removal.auth.HeaderApiKeyAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "EXCEPTION_HANDLER": "removal.api.handlers.exception_handler",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
# The OpenAPI document at /api/schema/ (described in removal/api/schema.py) and its docs page
# at /api/docs/, whose JavaScript and CSS come from drf-spectacular-sidecar, never a CDN.
SPECTACULAR_SETTINGS = {
    "TITLE": "Cutout API",
    "DESCRIPTION": "Background removal, wire-compatible with Pixian.AI's API v2 (errors "
    '`{"error": {"status", "code", "message"}}`) and remove.bg\'s v1.0 (errors '
    '`{"errors": [{"title", "code", "detail"}]}`), with the codes of the README.',
    "VERSION": "2",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    # validatorUrl off: Swagger UI would otherwise load a badge from validator.swagger.io.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "PREPROCESSING_HOOKS": ["removal.api.openapi.public_endpoints"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "removal.api.openapi.canonical_paths",
    ],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("CUTOUT_LOG_LEVEL", "INFO")},
}
