"""Gunicorn settings for the Promoter image (`gunicorn -c deploy/gunicorn.conf.py`).

Everything is read from PROMOTER_* environment variables, so a deployment tunes the web
process without a new image or entrypoint.
"""

import os


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


wsgi_app = "promoter.wsgi:application"
bind = [os.environ.get("PROMOTER_BIND", "0.0.0.0:8000")]
workers = _int("PROMOTER_WEB_WORKERS", 2)
# Threads keep health checks, tokens and pages served while a request waits on a promotion.
threads = _int("PROMOTER_WEB_THREADS", 4)
timeout = _int("PROMOTER_WEB_TIMEOUT", 120)
graceful_timeout = _int("PROMOTER_WEB_GRACEFUL_TIMEOUT", 30)
keepalive = _int("PROMOTER_WEB_KEEPALIVE", 5)
# Which proxies may set X-Forwarded-Proto (gunicorn's default trusts only loopback).
forwarded_allow_ips = os.environ.get("PROMOTER_FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

# The heartbeat file on a disk-backed /tmp can stall workers; /dev/shm is memory.
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"

# Gunicorn 25+ opens a control socket at $HOME/.gunicorn/gunicorn.ctl by default: one path
# shared by every gunicorn on the host, and an error when HOME is not writable. Off unless
# a per-instance path is given.
if os.environ.get("PROMOTER_WEB_CONTROL_SOCKET"):
    control_socket = os.environ["PROMOTER_WEB_CONTROL_SOCKET"]
else:
    control_socket_disable = True

accesslog = "-"
# The path without its query (%(U)s, not %(r)s) and no Referer: an API key may travel as
# ?key=..., and the Referer repeats the previous page's query.
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms "%(a)s"'
errorlog = "-"
loglevel = os.environ.get("PROMOTER_LOG_LEVEL", "info").lower()
