"""bench/login.py's gunicorn: the portal's settings, with bench/login_urls.py's bare view."""

from portal.settings import *  # noqa: F403

ROOT_URLCONF = "bench.login_urls"
