"""Settings for Passkey Portal.

Every setting that may change between deployments is read from the environment here, and only here.
The defaults run the portal on this machine with nothing installed (`make run`); with
DJANGO_DEBUG off the portal refuses the defaults that are unsafe in production.
"""

from datetime import timedelta
from pathlib import Path

import django_stubs_ext
import environ
from django.core.exceptions import ImproperlyConfigured

django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()

INSECURE_DEFAULT_SECRET_KEY = "insecure-development-key-do-not-use-in-production"  # noqa: S105

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default=INSECURE_DEFAULT_SECRET_KEY)
if not DEBUG and SECRET_KEY == INSECURE_DEFAULT_SECRET_KEY:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off.")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])

# --- Product ---------------------------------------------------------------------------------
PORTAL_RP_ID = env.str("PORTAL_RP_ID", default="localhost")
PORTAL_RP_NAME = env.str("PORTAL_RP_NAME", default="Passkey Portal")
PORTAL_ORIGINS = env.list("PORTAL_ORIGINS", default=["http://localhost:8000"])
PORTAL_AUTH_RATE = env.str("PORTAL_AUTH_RATE", default="30/min")
PORTAL_TOKEN_TTL = timedelta(days=env.int("PORTAL_TOKEN_TTL_DAYS", default=14))
PORTAL_CEREMONY_TTL = timedelta(minutes=5)
PORTAL_REAUTH_WINDOW = timedelta(seconds=env.int("PORTAL_REAUTH_WINDOW_SECONDS", default=300))
PORTAL_RELATED_ORIGINS = env.list("PORTAL_RELATED_ORIGINS", default=[])
PORTAL_AAGUID_URL = env.str("PORTAL_AAGUID_URL", default="")
PORTAL_NUM_PROXIES = env.int("PORTAL_NUM_PROXIES", default=0)
DATA_UPLOAD_MAX_MEMORY_SIZE = 256 * 1024
# Client JSON (API and page bodies, clientDataJSON): at most this many bytes and nesting levels,
# both checked before parsing. The largest body the API takes is a credential (16 KiB) and a few
# short fields.
PORTAL_MAX_JSON_BYTES = env.int("PORTAL_MAX_JSON_BYTES", default=64 * 1024)
PORTAL_JSON_MAX_DEPTH = env.int("PORTAL_JSON_MAX_DEPTH", default=64)
# The interpreter's recursion limit, put back once the chain libraries are imported (py_ecc
# raises it to 100,000, which lets deep recursion overflow the C stack).
PORTAL_RECURSION_LIMIT = 1000

# --- Chain -----------------------------------------------------------------------------------
CHAIN_RPC_URL = env.str("CHAIN_RPC_URL", default="http://127.0.0.1:8545")
CHAIN_ID = env.int("CHAIN_ID", default=31337)
# anvil's well-known development keys (accounts 0 and 1): defaults only on anvil's chain id.
_ANVIL_DEV_KEYS = {
    "CHAIN_DEPLOYER_KEY": "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "CHAIN_SPONSOR_KEY": "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "CHAIN_RELAYER_KEY": "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
}
_on_anvil = CHAIN_ID == 31337
CHAIN_DEPLOYER_KEY = env.str(
    "CHAIN_DEPLOYER_KEY", default=_ANVIL_DEV_KEYS["CHAIN_DEPLOYER_KEY"] if _on_anvil else ""
)
CHAIN_SPONSOR_KEY = env.str(
    "CHAIN_SPONSOR_KEY", default=_ANVIL_DEV_KEYS["CHAIN_SPONSOR_KEY"] if _on_anvil else ""
)
# The key that sends every transaction of the operation pipeline (handleOps, account deployments).
CHAIN_RELAYER_KEY = env.str(
    "CHAIN_RELAYER_KEY", default=_ANVIL_DEV_KEYS["CHAIN_RELAYER_KEY"] if _on_anvil else ""
)
for _name in ("CHAIN_DEPLOYER_KEY", "CHAIN_SPONSOR_KEY", "CHAIN_RELAYER_KEY"):
    if not globals()[_name]:
        raise ImproperlyConfigured(f"{_name} must be set when CHAIN_ID is not anvil's (31337).")
    if not _on_anvil and globals()[_name] in _ANVIL_DEV_KEYS.values():
        raise ImproperlyConfigured(
            f"{_name} is a public anvil key; set a real one for CHAIN_ID {CHAIN_ID}."
        )
# deploycontracts tops the paymaster's EntryPoint deposit up to this amount (wei).
CHAIN_PAYMASTER_DEPOSIT_WEI = env.int("CHAIN_PAYMASTER_DEPOSIT_WEI", default=10**19)
CHAIN_DEPLOYMENTS_DIR = VAR_DIR / "deployments"
# `manage.py devchain`: anvil's state file and how often it is dumped (seconds).
CHAIN_DEVCHAIN_STATE = VAR_DIR / "anvil" / "state.json"
CHAIN_DEVCHAIN_DUMP_INTERVAL = env.int("CHAIN_DEVCHAIN_DUMP_INTERVAL", default=30)
# The event indexer (chain.indexer): every run re-reads the last CHAIN_REORG_MARGIN blocks it had
# indexed; it reads at most CHAIN_INDEXER_BATCH_BLOCKS blocks per eth_getLogs call and database
# transaction; beat runs it every CHAIN_INDEXER_SECONDS; a chain never indexed is read from
# CHAIN_INDEXER_START_BLOCK (set it to the contracts' deployment block on a public chain).
CHAIN_REORG_MARGIN = env.int("CHAIN_REORG_MARGIN", default=2 if _on_anvil else 12)
CHAIN_INDEXER_SECONDS = env.float("CHAIN_INDEXER_SECONDS", default=2.0)
CHAIN_INDEXER_BATCH_BLOCKS = env.int("CHAIN_INDEXER_BATCH_BLOCKS", default=1000)
CHAIN_INDEXER_START_BLOCK = env.int("CHAIN_INDEXER_START_BLOCK", default=0)
# A block explorer's base URL; /account links the smart account's address to {URL}/address/{addr}.
CHAIN_EXPLORER_URL = env.str("CHAIN_EXPLORER_URL", default="")
# The operation pipeline (chain/pipeline.py). An operation is `confirmed` once its block is this
# many blocks deep (1: the block that includes it) and still on the chain.
CHAIN_CONFIRMATIONS = env.int("CHAIN_CONFIRMATIONS", default=1 if _on_anvil else 12)
# How long the sponsor's paymaster signature on a user operation stays valid (seconds); longer
# than a ceremony, so that an operation signed at the last moment can still be sent.
CHAIN_SPONSOR_WINDOW_SECONDS = env.int("CHAIN_SPONSOR_WINDOW_SECONDS", default=900)
# A transaction still pending after this long is replaced by one with higher fees (same nonce).
CHAIN_REPLACE_AFTER_SECONDS = env.int("CHAIN_REPLACE_AFTER_SECONDS", default=60)
# How often beat runs the pipeline tick: expire, re-dispatch and track operations (seconds).
CHAIN_TICK_SECONDS = env.float("CHAIN_TICK_SECONDS", default=2.0)
# Bundles of the built-in relayer: up to this many signed user operations in one handleOps, and as
# many relayer calls (account deployments) in one RelayerBatch transaction. 1: one per transaction.
CHAIN_BUNDLE_MAX_OPS = env.int("CHAIN_BUNDLE_MAX_OPS", default=64)
# An ERC-4337 bundler's JSON-RPC URL (e.g. Alto): when set, signed user operations go there
# instead of to the built-in relayer (relayer calls such as account deployments still use it).
CHAIN_BUNDLER_URL = env.str("CHAIN_BUNDLER_URL", default="")
# A chain JSON-RPC URL anyone may read from, which the /connect popup tells dapps (their provider
# forwards read-only methods to it). Never CHAIN_RPC_URL elsewhere than on anvil: that URL may
# hold a hosted provider's key. Empty: a dapp gives its own.
CHAIN_PUBLIC_RPC_URL = env.str("CHAIN_PUBLIC_RPC_URL", default=CHAIN_RPC_URL if _on_anvil else "")
# What the portal pays on chain (chain.budgets): gas reserved per rolling hour and day for the
# relayer's transactions (account deployments) and for the paymaster's sponsored operations; a
# request that would go over is refused (429 `budget_exhausted`), nothing written.
CHAIN_RELAYER_GAS_PER_HOUR = env.int("CHAIN_RELAYER_GAS_PER_HOUR", default=500_000_000)
CHAIN_RELAYER_GAS_PER_DAY = env.int("CHAIN_RELAYER_GAS_PER_DAY", default=5_000_000_000)
CHAIN_PAYMASTER_GAS_PER_HOUR = env.int("CHAIN_PAYMASTER_GAS_PER_HOUR", default=500_000_000)
CHAIN_PAYMASTER_GAS_PER_DAY = env.int("CHAIN_PAYMASTER_GAS_PER_DAY", default=5_000_000_000)
# Sponsored (passkey-approved) operations one person may ask for per rolling 24 hours.
PORTAL_SPONSORED_OPERATIONS_PER_DAY = env.int("PORTAL_SPONSORED_OPERATIONS_PER_DAY", default=50)
# Below these the chain is `degraded` in /healthz and operators are emailed (wei).
CHAIN_RELAYER_MIN_BALANCE_WEI = env.int("CHAIN_RELAYER_MIN_BALANCE_WEI", default=10**17)
CHAIN_PAYMASTER_MIN_DEPOSIT_WEI = env.int("CHAIN_PAYMASTER_MIN_DEPOSIT_WEI", default=10**17)
# Operators are emailed when a budget is 80% used or a balance runs low; checked every
# CHAIN_BUDGET_CHECK_SECONDS by beat.
PORTAL_OPERATOR_EMAILS = env.list("PORTAL_OPERATOR_EMAILS", default=[])
CHAIN_BUDGET_CHECK_SECONDS = env.int("CHAIN_BUDGET_CHECK_SECONDS", default=300)

# --- Guardian recovery (recovery/) -----------------------------------------------------------
# How long a started recovery waits for a guardian's approval before it expires (seconds).
RECOVERY_APPROVAL_SECONDS = env.int("RECOVERY_APPROVAL_SECONDS", default=72 * 3600)
# Wrong short codes typed by guardians before a request is discarded.
RECOVERY_CODE_ATTEMPTS = env.int("RECOVERY_CODE_ATTEMPTS", default=5)
# A guardian starts at most one recovery of an account within this window (seconds).
RECOVERY_GUARDIAN_LIMIT_SECONDS = env.int("RECOVERY_GUARDIAN_LIMIT_SECONDS", default=72 * 3600)
# A guardian whose recovery of an account was cancelled may not start another one of it for
# this long (seconds).
RECOVERY_DISCARD_COOLDOWN_SECONDS = env.int("RECOVERY_DISCARD_COOLDOWN_SECONDS", default=24 * 3600)
# How often beat finalizes due recoveries and expires late ones (seconds).
RECOVERY_DEADLINES_SECONDS = env.float("RECOVERY_DEADLINES_SECONDS", default=60.0)
# Extra addresses told when a recovery starts or is cancelled (staff with an email always are).
RECOVERY_ALERT_EMAILS = env.list("RECOVERY_ALERT_EMAILS", default=[])

# --- Domain watch (domains/) ------------------------------------------------------------------
# Domains watched by the domain-ownership watch: the RP ID unless it is localhost, plus those added
# in the console.
DOMAINS_WATCH = env.list(
    "DOMAINS_WATCH", default=[] if PORTAL_RP_ID in ("localhost", "127.0.0.1") else [PORTAL_RP_ID]
)
DOMAINS_SIGNALS = env.list(
    "DOMAINS_SIGNALS",
    default=["rdap", "dns", "tls", "ct", "content", "wellknown", "hsts", "onchain"],
)
DOMAINS_CHECK_SECONDS = env.int("DOMAINS_CHECK_SECONDS", default=300)
DOMAINS_TIMEOUT_SECONDS = env.float("DOMAINS_TIMEOUT_SECONDS", default=10.0)
# `host:port` of each resolver asked; empty: the system's resolvers.
DOMAINS_DNS_RESOLVERS = env.list("DOMAINS_DNS_RESOLVERS", default=[])
DOMAINS_RDAP_BOOTSTRAP_URL = env.str(
    "DOMAINS_RDAP_BOOTSTRAP_URL", default="https://data.iana.org/rdap/dns.json"
)
# A Certificate Transparency monitor with Cert Spotter's API (https://api.certspotter.com);
# empty: off.
DOMAINS_CT_URL = env.str("DOMAINS_CT_URL", default="")
DOMAINS_CT_API_KEY = env.str("DOMAINS_CT_API_KEY", default="")
# Extra CA certificates (PEM) trusted for the watched domain, on top of the system store.
DOMAINS_CA_FILE = env.str("DOMAINS_CA_FILE", default="")
DOMAINS_HTTPS_PORT = env.int("DOMAINS_HTTPS_PORT", default=443)
DOMAINS_CONTENT_PATHS = env.list("DOMAINS_CONTENT_PATHS", default=["/login", "/signup"])
DOMAINS_ALERT_EMAILS = env.list("DOMAINS_ALERT_EMAILS", default=[])
DOMAINS_WEBHOOK_URL = env.str("DOMAINS_WEBHOOK_URL", default="")
DOMAINS_WEBHOOK_SECRET = env.str("DOMAINS_WEBHOOK_SECRET", default="")
DOMAINS_WEBHOOK_RETRIES = env.int("DOMAINS_WEBHOOK_RETRIES", default=8)
DOMAINS_RENOTIFY_SECONDS = env.int("DOMAINS_RENOTIFY_SECONDS", default=6 * 3600)
DOMAINS_AUTO_LOCKDOWN = env.bool("DOMAINS_AUTO_LOCKDOWN", default=False)
# A burst: at least this many passkeys added on chain across two or more accounts within the window.
DOMAINS_KEY_BURST = env.int("DOMAINS_KEY_BURST", default=20)
DOMAINS_KEY_BURST_SECONDS = env.int("DOMAINS_KEY_BURST_SECONDS", default=3600)

# --- Django ----------------------------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "portal",
    "accounts",
    "passkeys",
    "chain",
    "sessionkeys",
    "recovery",
    "domains",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.SignInActivityMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

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
                "portal.context_processors.guard_banners",
                "recovery.context_processors.recovery_notices",
            ],
        },
    },
]

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'portal.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# Keep each worker's database connection between requests (a new PostgreSQL connection costs more
# than a whole sign-in); checked before reuse, so a restarted database is reconnected to.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's, with a health check that asks the socket instead of the server (portal.postgresql)
    DATABASES["default"]["ENGINE"] = "portal.postgresql"
    # Parameters bound by the server, and a statement run five times on a connection prepared:
    # PostgreSQL then skips parsing and planning it (the portal's few hot queries run again and
    # again). Behind a pooler that cannot keep prepared statements (PgBouncer before 1.21 in
    # transaction mode), set DATABASE_PREPARED_STATEMENTS=false.
    DATABASES["default"].setdefault("OPTIONS", {})["server_side_binding"] = True
    if env.bool("DATABASE_PREPARED_STATEMENTS", default=True):
        DATABASES["default"]["OPTIONS"]["prepare_threshold"] = 5
if "DATABASE_URL" not in env.ENVIRON:
    VAR_DIR.mkdir(exist_ok=True)  # the embedded default lives there; any manage.py can create it
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    # Only the rate limit's counters live here, and it falls back to per-process counters when
    # Redis is down (portal.throttling): fail fast rather than hang a request.
    CACHES = {
        "default": {
            "BACKEND": "portal.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
LOGIN_URL = "/login"
LOGIN_REDIRECT_URL = "/account"
LOGOUT_REDIRECT_URL = "/login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# /static/connector/provider.js: the EIP-1193 provider dapps load from the portal (README).
STATICFILES_DIRS = [BASE_DIR / "static", ("connector", BASE_DIR / "connector" / "src")]
STATIC_ROOT = BASE_DIR / "staticfiles"

EMAIL_BACKEND = env.str(
    "DJANGO_EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend"
)
DEFAULT_FROM_EMAIL = env.str(
    "DJANGO_DEFAULT_FROM_EMAIL", default="Passkey Portal <portal@localhost>"
)

# --- Security headers (always on; the secure-transport ones when debug is off) -----------------
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
CSRF_TRUSTED_ORIGINS = PORTAL_ORIGINS
if not DEBUG:
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    if PORTAL_NUM_PROXIES > 0:
        # Only a configured proxy may say the client used HTTPS; without one, anyone could.
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'none'"],
        "object-src": ["'none'"],
    },
}

# --- API -------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.PortalTokenAuthentication",
        "portal.authentication.PortalSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["portal.parsers.BoundedJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "portal.openapi.PortalAutoSchema",
    "EXCEPTION_HANDLER": "portal.api_errors.exception_handler",
    "NUM_PROXIES": PORTAL_NUM_PROXIES or None,
    "UNAUTHENTICATED_USER": None,
}

KNOX_TOKEN_MODEL = "knox.AuthToken"  # noqa: S105 - a model name
REST_KNOX = {
    "AUTH_HEADER_PREFIX": "Bearer",
    "TOKEN_TTL": PORTAL_TOKEN_TTL,
    "AUTO_REFRESH": False,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Passkey Portal API",
    "DESCRIPTION": "Passwordless accounts and passkey-controlled smart accounts.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Several models have a `status` (or a `kind`): name each choice set after its model.
    "ENUM_NAME_OVERRIDES": {
        "OperationStatusEnum": "chain.models.ChainOperation.Status",
        "GuardianStatusEnum": "recovery.models.Guardian.Status",
        "RecoveryStatusEnum": "recovery.models.RecoveryRequest.Status",
        "SignatureKindEnum": "passkeys.models.SignatureRequest.Kind",
    },
}

# --- Celery ----------------------------------------------------------------------------------
# Redis in production; with no REDIS_URL, a filesystem transport under var/ so that `make run`
# needs no service.
CELERY_BROKER_DIR = VAR_DIR / "celery"
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {}
else:
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR / "queue"),
        "data_folder_out": str(CELERY_BROKER_DIR / "queue"),
        "processed_folder": str(CELERY_BROKER_DIR / "processed"),
        "store_processed": False,
    }
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
# A dead broker fails a publish within a few seconds instead of blocking the request: the caller
# logs it and the pipeline tick (the database is the durable queue) dispatches the work later.
CELERY_TASK_PUBLISH_RETRY = True
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.5,
    "interval_max": 1,
}
CELERY_BROKER_CONNECTION_TIMEOUT = 2
if REDIS_URL:
    CELERY_BROKER_TRANSPORT_OPTIONS.update({"socket_connect_timeout": 2, "socket_timeout": 10})
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Workers keep their database connection from one task to the next, as web workers do between
# requests (Celery's Django fixup otherwise opens a new one for every task, which cost the
# pipeline more than its queries); portal.celery closes one past CONN_MAX_AGE or unusable.
CELERY_DB_REUSE_MAX = 1000
# Workers log through LOGGING below (its filter redacts RPC URLs), not Celery's own root handler.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "refresh-authenticator-catalog": {
        "task": "passkeys.tasks.refresh_authenticator_catalog",
        "schedule": timedelta(days=7),
    },
    "purge-stale-ceremonies": {
        "task": "passkeys.tasks.purge_stale_ceremonies_task",
        "schedule": timedelta(hours=1),
    },
    "index-chain": {
        "task": "chain.tasks.index_chain_task",
        "schedule": timedelta(seconds=CHAIN_INDEXER_SECONDS),
        # A tick nobody picked up soon is worthless: the next one reads the same blocks.
        "options": {"expires": max(10.0, 5 * CHAIN_INDEXER_SECONDS)},
    },
    "watch-domains": {
        "task": "domains.tasks.watch_domains",
        "schedule": timedelta(seconds=DOMAINS_CHECK_SECONDS),
        # A run nobody picked up within a period is worthless: the next one does the same.
        "options": {"expires": DOMAINS_CHECK_SECONDS},
    },
    "recovery-deadlines": {
        "task": "recovery.tasks.recovery_deadlines",
        "schedule": timedelta(seconds=RECOVERY_DEADLINES_SECONDS),
        "options": {"expires": RECOVERY_DEADLINES_SECONDS},
    },
    "chain-pipeline-tick": {
        "task": "chain.tasks.pipeline_tick",
        "schedule": timedelta(seconds=CHAIN_TICK_SECONDS),
        "options": {"expires": CHAIN_TICK_SECONDS * 5},
    },
    "chain-budgets": {
        "task": "chain.tasks.check_budgets_task",
        "schedule": timedelta(seconds=CHAIN_BUDGET_CHECK_SECONDS),
        "options": {"expires": CHAIN_BUDGET_CHECK_SECONDS},
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # RPC URLs carry providers' API keys: every log line has its URLs cut to scheme and host.
    "filters": {"redact_urls": {"()": "portal.redaction.RedactUrlsFilter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redact_urls"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("DJANGO_LOG_LEVEL", default="INFO")},
}

# --- session keys (sessionkeys) ---
PORTAL_SESSION_MAX_SECONDS = env.int("PORTAL_SESSION_MAX_SECONDS", default=30 * 86400)
PORTAL_SESSION_LONG_SECONDS = env.int("PORTAL_SESSION_LONG_SECONDS", default=7 * 86400)
PORTAL_SESSION_DEFAULT_FEE_LIMIT_WEI = env.int(
    "PORTAL_SESSION_DEFAULT_FEE_LIMIT_WEI", default=10**16
)
PORTAL_SESSION_RELAY_MAX_COST_WEI = env.int("PORTAL_SESSION_RELAY_MAX_COST_WEI", default=10**16)
PORTAL_SESSION_RELAY_RATE = env.str("PORTAL_SESSION_RELAY_RATE", default="120/min")
PORTAL_SESSION_EXPIRE_SECONDS = env.int("PORTAL_SESSION_EXPIRE_SECONDS", default=60)
CELERY_BEAT_SCHEDULE["expire-sessions"] = {
    "task": "sessionkeys.tasks.expire_sessions_task",
    "schedule": timedelta(seconds=PORTAL_SESSION_EXPIRE_SECONDS),
    "options": {"expires": PORTAL_SESSION_EXPIRE_SECONDS},
}
