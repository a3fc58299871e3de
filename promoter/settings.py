"""Promoter settings: one module, driven by environment variables (see README)."""

import os
import secrets
from pathlib import Path
from urllib.parse import unquote, urlparse

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


DATA_DIR = Path(env("PROMOTER_DATA_DIR", str(BASE_DIR / ".run"))).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)


def persistent_secret(name: str, env_name: str) -> str:
    """A secret from the environment, else one generated once and kept in the data dir."""
    if value := env(env_name):
        return value
    path = DATA_DIR / name
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = persistent_secret("secret_key", "PROMOTER_SECRET_KEY")
DEBUG = env_bool("PROMOTER_DEBUG", False)

# The default follows PROMOTER_PORT, so `make run` on another port hands clients a token
# realm where the portal really listens.
PUBLIC_URL = env(
    "PROMOTER_PUBLIC_URL", f"http://127.0.0.1:{env('PROMOTER_PORT', '8000') or '8000'}"
).rstrip("/")
_public = urlparse(PUBLIC_URL)
ALLOWED_HOSTS = [
    h.strip()
    for h in env("PROMOTER_ALLOWED_HOSTS", f"{_public.hostname},127.0.0.1,localhost").split(",")
    if h.strip()
]
CSRF_TRUSTED_ORIGINS = [f"{_public.scheme}://{_public.netloc}"]
if _public.scheme == "https":
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("PROMOTER_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("PROMOTER_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "django_tasks_db",
    "accounts",
    "registries",
    "api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "api.middleware.ApiGuardMiddleware",  # before the key is read: size, control characters
    "accounts.auth.middleware.ApiAuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "promoter.middleware.DomainErrorMiddleware",
]

ROOT_URLCONF = "promoter.urls"
WSGI_APPLICATION = "promoter.wsgi.application"

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
                "accounts.context_processors.principal",
            ],
        },
    },
]


def database_from_url(url: str) -> dict:
    """Turn DATABASE_URL (postgres://user:pass@host:port/name or sqlite:///path) into settings."""
    parsed = urlparse(url)
    if parsed.scheme in {"postgres", "postgresql", "pgsql"}:
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parsed.path.lstrip("/")),
            "USER": unquote(parsed.username or ""),
            "PASSWORD": unquote(parsed.password or ""),
            "HOST": unquote(parsed.hostname or ""),
            "PORT": str(parsed.port or ""),
            "CONN_MAX_AGE": env_int("PROMOTER_DB_CONN_MAX_AGE", 60),
            "CONN_HEALTH_CHECKS": True,
        }
    if parsed.scheme == "sqlite":
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": parsed.path or ":memory:"}
    raise ValueError(f"DATABASE_URL scheme {parsed.scheme!r} is not supported (postgres, sqlite)")


DATABASES = {
    "default": database_from_url(env("DATABASE_URL"))
    if env("DATABASE_URL")
    else {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": DATA_DIR / "promoter.sqlite3",
        "OPTIONS": {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL;",
        },
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TASKS = {
    "default": {
        "BACKEND": env("PROMOTER_TASKS_BACKEND", "django_tasks_db.DatabaseBackend"),
        "QUEUES": ["default", "promotions"],
    }
}

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    # Holders of the Administer task may use Django's admin (permissions only, no sign-in).
    "accounts.backends.AdministratorBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "registries:registry_list"
LOGOUT_REDIRECT_URL = "registries:registry_list"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env("PROMOTER_TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
MEDIA_URL = "/media/"  # never "": the test server would serve the working tree
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env("PROMOTER_STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if env_bool("PROMOTER_MANIFEST_STATIC", False)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Serve from the app dirs too, so `manage.py run_promoter` works before collectstatic.
WHITENOISE_USE_FINDERS = True

DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("PROMOTER_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- Promoter ---------------------------------------------------------------
# The backing OCI registry: where the portal's client talks to it, and the
# host:port docker clients use (shown in `docker pull` commands).
PROMOTER_REGISTRY_PORT = env_int("PROMOTER_REGISTRY_PORT", 5000)
PROMOTER_REGISTRY_URL = env(
    "PROMOTER_REGISTRY_URL", f"http://127.0.0.1:{PROMOTER_REGISTRY_PORT}"
).rstrip("/")
PROMOTER_REGISTRY_HOST = env(
    "PROMOTER_REGISTRY_HOST", f"localhost:{urlparse(PROMOTER_REGISTRY_URL).port or 5000}"
)
# Shared secret the registry sends in `Authorization: Bearer <secret>` with notifications.
PROMOTER_NOTIFY_SECRET = persistent_secret("notify_secret", "PROMOTER_NOTIFY_SECRET")
# Docker token service: the registry's auth.token issuer/service and the signing key.
PROMOTER_TOKEN_ISSUER = env("PROMOTER_TOKEN_ISSUER", "promoter")
PROMOTER_TOKEN_SERVICE = env("PROMOTER_TOKEN_SERVICE", "promoter-registry")
PROMOTER_TOKEN_KEY = Path(env("PROMOTER_TOKEN_KEY", str(DATA_DIR / "token.key")))
PROMOTER_TOKEN_CERT = Path(env("PROMOTER_TOKEN_CERT", str(DATA_DIR / "token.crt")))
PROMOTER_TOKEN_TTL = env_int("PROMOTER_TOKEN_TTL", 300)
# Whether the bundled registry runs with token auth (set by `make run` and test fixtures).
PROMOTER_REGISTRY_TOKEN_AUTH = env_bool("PROMOTER_REGISTRY_TOKEN_AUTH", True)
# Promotions: parallel blob copies, and how long the API waits for a promotion to end.
PROMOTER_COPY_PARALLELISM = env_int("PROMOTER_COPY_PARALLELISM", 4)
PROMOTER_API_WAIT_SECONDS = env_int("PROMOTER_API_WAIT_SECONDS", 300)
PROMOTER_REGISTRY_TIMEOUT = env_int("PROMOTER_REGISTRY_TIMEOUT", 30)
# Bytes/s below which a blob download is given up (after the read timeout); 0 = no floor.
PROMOTER_MIN_TRANSFER_RATE = env_int("PROMOTER_MIN_TRANSFER_RATE", 32 * 1024)
# Reliability: transient registry failures (connection errors, timeouts, 5xx, 429) are
# tried this many times in all, waiting BACKOFF, 2×BACKOFF, … seconds (with jitter).
PROMOTER_REGISTRY_RETRIES = env_int("PROMOTER_REGISTRY_RETRIES", 3)
PROMOTER_REGISTRY_BACKOFF = float(env("PROMOTER_REGISTRY_BACKOFF", "0.2"))
# A running promotion whose worker sent no heartbeat for this long is requeued by
# `manage.py reconcile` (run periodically by `make run`); heartbeats come 12× as often.
PROMOTER_STALE_SECONDS = float(env("PROMOTER_STALE_SECONDS", "60"))
