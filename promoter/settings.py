"""Promoter settings: one module, driven by environment variables (see README)."""

import ipaddress
from pathlib import Path
from urllib.parse import urlparse

import environ
from django.core.exceptions import ImproperlyConfigured

from promoter.shared_secrets import missing_secret, shared_secret

BASE_DIR = Path(__file__).resolve().parent.parent


class _FileAwareEnviron(environ.FileAwareMapping):
    """os.environ, where X_FILE names a file holding X (compose and Kubernetes secrets).

    A file's final line break is not part of the value (editors and `echo` add one).
    """

    def __getitem__(self, key: str) -> str:
        path = self.env.get(f"{key}_FILE")
        if not path:
            return self.env[key]
        try:
            return super().__getitem__(key).rstrip("\r\n")
        except OSError as exc:
            raise ImproperlyConfigured(f"{key}_FILE={path!r} cannot be read: {exc}") from exc


class Env(environ.FileAwareEnv):
    """django-environ's reader: X or X_FILE; an empty value means "not set"; a value that
    does not parse is a start-up error naming the variable. A value is taken as it is (no
    `$OTHER` expansion: a secret may well start with `$`)."""

    ENVIRON = _FileAwareEnviron()
    FALSE_STRINGS = ("false", "off", "no", "n", "0")
    KINDS = {int: "a whole number", float: "a number", bool: "1/0, true/false, yes/no or on/off"}

    def get_value(self, var, cast=None, default=environ.Env.NOTSET, parse_default=False):
        raw = self.ENVIRON.get(var)
        if raw is not None and not raw.strip() and default is not self.NOTSET:
            return default  # empty (e.g. compose's `${X:-}`): as if not set
        if raw is None:
            return super().get_value(var, cast=cast, default=default, parse_default=parse_default)
        if cast is bool:
            word = raw.strip().lower()
            if word not in self.BOOLEAN_TRUE_STRINGS and word not in self.FALSE_STRINGS:
                raise ImproperlyConfigured(f"{var}={raw!r} is not {self.KINDS[bool]}.")
        try:
            return self.parse_value(raw.strip() if cast in self.KINDS else raw, cast)
        except (ValueError, TypeError) as exc:
            kind = self.KINDS.get(cast, "valid")
            raise ImproperlyConfigured(f"{var}={raw!r} is not {kind}.") from exc


env = Env()

# Every PROMOTER_* variable is read here, once (README lists them); the rest of the code reads
# django.conf.settings.
DATA_DIR = Path(env.str("PROMOTER_DATA_DIR", default=str(BASE_DIR / ".run"))).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)


# SQLite is one machine by construction: only then may shared secrets be generated
# (promoter.shared_secrets); with PostgreSQL a missing one is a start-up error.
SINGLE_NODE = urlparse(env.str("DATABASE_URL", default="") or "sqlite://").scheme == "sqlite"


def persistent_secret(name: str, env_name: str, what: str) -> str:
    """A secret from the environment (or X_FILE), else (single node only) made into the data dir."""
    return shared_secret(
        variable=env_name,
        value=env.str(env_name, default=""),
        what=what,
        data_dir=DATA_DIR,
        file_name=name,
        generate=SINGLE_NODE,
    )


SECRET_KEY = persistent_secret("secret_key", "PROMOTER_SECRET_KEY", "Django's secret key")
DEBUG = env.bool("PROMOTER_DEBUG", default=False)

# Web port of `make run` (manage.py run_promoter). The public URL's default follows it, so
# `make run` on another port hands clients a token realm where the portal really listens.
PROMOTER_PORT = env.int("PROMOTER_PORT", default=8000)
PUBLIC_URL = env.str("PROMOTER_PUBLIC_URL", default=f"http://127.0.0.1:{PROMOTER_PORT}").rstrip("/")
_public = urlparse(PUBLIC_URL)
ALLOWED_HOSTS = [
    h.strip()
    for h in env.list(
        "PROMOTER_ALLOWED_HOSTS", default=[_public.hostname or "", "127.0.0.1", "localhost"]
    )
    if h.strip()
]
CSRF_TRUSTED_ORIGINS = [f"{_public.scheme}://{_public.netloc}"]
if _public.scheme == "https":
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env.bool("PROMOTER_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("PROMOTER_HSTS_SECONDS", default=31536000)
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
                "registries.context_processors.approvals",
            ],
            # {% load dates %}: the one date format of every page (promoter/templatetags).
            "libraries": {"dates": "promoter.templatetags.dates"},
        },
    },
]


SQLITE_OPTIONS = {
    "timeout": 20,
    "transaction_mode": "IMMEDIATE",
    "init_command": "PRAGMA journal_mode=WAL;",
}


# Each web thread keeps its SQLite connection between requests: opening one (and its WAL
# pragma) on every request was 7 % of the web's CPU under bench/load.py.
SQLITE_CONN_MAX_AGE = env.int("PROMOTER_DB_CONN_MAX_AGE", default=60)


def database_from_url(url: str) -> dict:
    """DATABASE_URL (postgres://user:pass@host:port/name or sqlite:////abs/path) as settings."""
    config = env.db_url_config(url)
    engine = config.get("ENGINE", "")
    if engine == "django.db.backends.postgresql":
        config.setdefault("CONN_MAX_AGE", env.int("PROMOTER_DB_CONN_MAX_AGE", default=60))
        config.setdefault("CONN_HEALTH_CHECKS", True)
    elif engine == "django.db.backends.sqlite3":
        config["OPTIONS"] = {**SQLITE_OPTIONS, **config.get("OPTIONS", {})}
        config.setdefault("CONN_MAX_AGE", SQLITE_CONN_MAX_AGE)
    else:
        scheme = urlparse(url).scheme
        raise ImproperlyConfigured(
            f"DATABASE_URL scheme {scheme!r} is not supported (postgres, sqlite)."
        )
    return config


DATABASES = {
    "default": database_from_url(_database_url)
    if (_database_url := env.str("DATABASE_URL", default=""))
    else {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": DATA_DIR / "promoter.sqlite3",
        "OPTIONS": dict(SQLITE_OPTIONS),
        "CONN_MAX_AGE": SQLITE_CONN_MAX_AGE,
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TASKS = {
    "default": {
        "BACKEND": env.str("PROMOTER_TASKS_BACKEND", default="django_tasks_db.DatabaseBackend"),
        # "webhooks": deliveries, run by the worker's own lane so a slow receiver never
        # holds up a promotion (registries/management/commands/worker.py).
        "QUEUES": ["default", "promotions", "webhooks"],
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
# The home page: the pipeline board.
LOGIN_REDIRECT_URL = "registries:pipeline"
LOGOUT_REDIRECT_URL = "registries:pipeline"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("PROMOTER_TIME_ZONE", default="UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
MEDIA_URL = "/media/"  # never "": the test server would serve the working tree
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("PROMOTER_STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if env.bool("PROMOTER_MANIFEST_STATIC", default=False)
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
    "root": {
        "handlers": ["console"],
        "level": env.str("PROMOTER_LOG_LEVEL", default="INFO").upper(),
    },
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- Promoter ---------------------------------------------------------------
# `make run` (manage.py run_promoter; its web port, PROMOTER_PORT, is declared above with
# the public URL): gunicorn workers; seconds between full resyncs, run by one of the
# workers (0: none).
PROMOTER_WEB_WORKERS = env.int("PROMOTER_WEB_WORKERS", default=2)
PROMOTER_SYNC_INTERVAL = env.int("PROMOTER_SYNC_INTERVAL", default=300)
# First start (manage.py bootstrap): the Admin user's password (None: generated and printed
# once) and whether to create the demo pipeline.
PROMOTER_ADMIN_PASSWORD = env.str("PROMOTER_ADMIN_PASSWORD", default=None)
PROMOTER_DEMO = env.bool("PROMOTER_DEMO", default=True)
# Sign-in throttling: this many failures for a user name from one address within the window
# (seconds) refuse further attempts until the window has passed.
PROMOTER_LOGIN_MAX_FAILURES = env.int("PROMOTER_LOGIN_MAX_FAILURES", default=10)
PROMOTER_LOGIN_WINDOW_SECONDS = env.int("PROMOTER_LOGIN_WINDOW_SECONDS", default=300)
# The backing OCI registry: where the portal's client talks to it, and the
# host:port docker clients use (shown in `docker pull` commands).
PROMOTER_REGISTRY_PORT = env.int("PROMOTER_REGISTRY_PORT", default=5000)
PROMOTER_REGISTRY_URL = env.str(
    "PROMOTER_REGISTRY_URL", default=f"http://127.0.0.1:{PROMOTER_REGISTRY_PORT}"
).rstrip("/")
PROMOTER_REGISTRY_HOST = env.str(
    "PROMOTER_REGISTRY_HOST", default=f"localhost:{urlparse(PROMOTER_REGISTRY_URL).port or 5000}"
)
# Shared secret the registry sends in `Authorization: Bearer <secret>` with notifications.
PROMOTER_NOTIFY_SECRET = persistent_secret(
    "notify_secret", "PROMOTER_NOTIFY_SECRET", "what the registry sends with notifications"
)
# Docker token service: the registry's auth.token issuer/service and the signing key.
PROMOTER_TOKEN_ISSUER = env.str("PROMOTER_TOKEN_ISSUER", default="promoter")
PROMOTER_TOKEN_SERVICE = env.str("PROMOTER_TOKEN_SERVICE", default="promoter-registry")
PROMOTER_TOKEN_KEY = Path(env.str("PROMOTER_TOKEN_KEY", default=str(DATA_DIR / "token.key")))
PROMOTER_TOKEN_CERT = Path(env.str("PROMOTER_TOKEN_CERT", default=str(DATA_DIR / "token.crt")))
if not SINGLE_NODE:
    # Every node signs tokens the registry checks against one certificate: never make one up.
    for _variable, _path in (
        ("PROMOTER_TOKEN_KEY", PROMOTER_TOKEN_KEY),
        ("PROMOTER_TOKEN_CERT", PROMOTER_TOKEN_CERT),
    ):
        if not env.str(_variable, default="") or not _path.is_file():
            raise missing_secret(
                _variable,
                f"the path of the token signing key or its certificate; {_path} is not a file",
            )
# The bundled registry's http.secret (signs upload state): every replica behind one load
# balancer needs the same. Required where a bundled registry config is written (make run).
PROMOTER_REGISTRY_HTTP_SECRET = (
    persistent_secret(
        "registry_http_secret", "PROMOTER_REGISTRY_HTTP_SECRET", "the registry's http.secret"
    )
    if SINGLE_NODE
    else env.str("PROMOTER_REGISTRY_HTTP_SECRET", default="")
)
PROMOTER_TOKEN_TTL = env.int("PROMOTER_TOKEN_TTL", default=300)
# Whether the bundled registry runs with token auth (set by `make run` and test fixtures).
PROMOTER_REGISTRY_TOKEN_AUTH = env.bool("PROMOTER_REGISTRY_TOKEN_AUTH", default=True)
# Promotions: parallel blob copies, and how long the API waits for a promotion to end.
PROMOTER_COPY_PARALLELISM = env.int("PROMOTER_COPY_PARALLELISM", default=4)
PROMOTER_API_WAIT_SECONDS = env.int("PROMOTER_API_WAIT_SECONDS", default=300)
PROMOTER_REGISTRY_TIMEOUT = env.int("PROMOTER_REGISTRY_TIMEOUT", default=30)
# Bytes/s below which a blob download is given up (after the read timeout); 0 = no floor.
PROMOTER_MIN_TRANSFER_RATE = env.int("PROMOTER_MIN_TRANSFER_RATE", default=32 * 1024)
# Reliability: transient registry failures (connection errors, timeouts, 5xx, 429) are
# tried this many times in all, waiting BACKOFF, 2×BACKOFF, … seconds (with jitter).
PROMOTER_REGISTRY_RETRIES = env.int("PROMOTER_REGISTRY_RETRIES", default=3)
PROMOTER_REGISTRY_BACKOFF = env.float("PROMOTER_REGISTRY_BACKOFF", default=0.2)
# A running promotion whose worker sent no heartbeat for this long is requeued by the
# workers (or `manage.py reconcile`); heartbeats come 12× as often.
PROMOTER_STALE_SECONDS = env.float("PROMOTER_STALE_SECONDS", default=60.0)
# The file each worker's loop touches; `manage.py worker_health` checks its age.
PROMOTER_WORKER_HEALTH_FILE = Path(
    env.str("PROMOTER_WORKER_HEALTH_FILE", default=str(DATA_DIR / "worker.alive"))
)
# Synchronous promotion API calls waiting at once per web process; beyond that the call
# answers 202 with the status URL at once (as with ?async=true), so waits never take every
# thread that serves health checks, tokens and pages. Default: half of the web threads.
PROMOTER_API_MAX_WAITS = env.int(
    "PROMOTER_API_MAX_WAITS", default=max(1, env.int("PROMOTER_WEB_THREADS", default=4) // 2)
)
# Proxies (CIDRs) whose X-Forwarded-For is believed: the load balancer in front of the webs.
PROMOTER_TRUSTED_PROXIES = [
    p.strip() for p in env.list("PROMOTER_TRUSTED_PROXIES", default=[]) if p.strip()
]
for _proxy in PROMOTER_TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy, strict=False)
    except ValueError as _exc:
        raise ImproperlyConfigured(f"PROMOTER_TRUSTED_PROXIES: {_exc}") from None


# --- Policies before production: webhooks (registries.delivery) ------------------------------
# One block, so merging it into a rewritten settings module stays mechanical.
# Seconds one delivery may take (connect, then each read); a receiver that never answers
# fails the attempt after this long, in the worker's webhook lane, never in a promotion.
PROMOTER_WEBHOOK_TIMEOUT = env.float("PROMOTER_WEBHOOK_TIMEOUT", default=10.0)
# Tries in all for one delivery; waits BACKOFF, 2×BACKOFF, … seconds between them.
PROMOTER_WEBHOOK_ATTEMPTS = env.int("PROMOTER_WEBHOOK_ATTEMPTS", default=5)
PROMOTER_WEBHOOK_BACKOFF = env.float("PROMOTER_WEBHOOK_BACKOFF", default=10.0)
# Seconds the policy checks may spend reading a source registry (signatures, labels) while
# a person waits for the promote dialog.
PROMOTER_POLICY_READ_TIMEOUT = env.float("PROMOTER_POLICY_READ_TIMEOUT", default=5.0)

# --- Security (issue 11): credentials at rest, limits, endpoints, CSP ------------------------
# One block on purpose, so merging it stays mechanical.
from csp.constants import NONCE, NONE, SELF  # noqa: E402

# Encrypts stored registry passwords (Fernet). Any long random string works; several,
# comma-separated, rotate keys (the first encrypts, all decrypt). Nodes sharing the database
# must share it: with PostgreSQL a missing key is a start-up error, never a generated one.
PROMOTER_CREDENTIALS_KEY = persistent_secret(
    "credentials_key",
    "PROMOTER_CREDENTIALS_KEY",
    "the key that encrypts the registry passwords stored in the database",
)
# The largest blob a promotion copies; bigger layers are refused before any byte moves.
PROMOTER_MAX_BLOB_BYTES = env.int("PROMOTER_MAX_BLOB_BYTES", default=10 * 1024**3)
# Refuse registry endpoints on loopback, private and link-local addresses (off by default:
# make run and the tests use loopback registries).
PROMOTER_FORBID_PRIVATE_ENDPOINTS = env.bool("PROMOTER_FORBID_PRIVATE_ENDPOINTS", default=False)
# Wall-clock limit of one registry call (blob bodies: once their headers arrived, the
# transfer-rate floor applies instead), and the shorter one inside a web request.
PROMOTER_REGISTRY_DEADLINE = env.int("PROMOTER_REGISTRY_DEADLINE", default=120)
PROMOTER_WEB_REGISTRY_DEADLINE = env.int("PROMOTER_WEB_REGISTRY_DEADLINE", default=10)
# New promotions one principal may request per minute (429 above).
PROMOTER_PROMOTIONS_PER_MINUTE = env.int("PROMOTER_PROMOTIONS_PER_MINUTE", default=60)


def _inline_style_hashes(*templates: Path) -> list[str]:
    """CSP hashes of the <style> blocks of standalone templates (the 500 page has no
    request, so no nonce)."""
    import base64
    import hashlib
    import re

    found = []
    for template in templates:
        text = template.read_text() if template.exists() else ""
        for block in re.findall(r"<style>(.*?)</style>", text, flags=re.S):
            digest = base64.b64encode(hashlib.sha256(block.encode()).digest()).decode()
            found.append(f"'sha256-{digest}'")
    return found


# django-csp 4: no inline scripts anywhere; inline <style> only with the request's nonce.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, NONCE, *_inline_style_hashes(BASE_DIR / "templates" / "500.html")],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    },
}
INSTALLED_APPS.append("csp")
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
    "csp.middleware.CSPMiddleware",
)
