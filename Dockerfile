# Promoter's one image: web (default), worker and init, see deploy/entrypoint.sh.
# Build: docker build -t promoter:latest .   (compose.yaml builds it once for every service)
FROM python:3.13-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    PROMOTER_DATA_DIR=/data PROMOTER_STATIC_ROOT=/app/staticfiles PROMOTER_MANIFEST_STATIC=1

WORKDIR /app
# The runtime user owns nothing but /data: the code stays root's and read-only to it.
RUN groupadd --system --gid 10001 promoter \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent promoter \
    && install -d -o 10001 -g 10001 -m 0700 /data

# Dependencies first, so a code change does not reinstall them.
COPY pyproject.toml ./
COPY promoter_cli ./promoter_cli
RUN pip install --no-cache-dir .
COPY . .
# collectstatic needs settings but no database; the secrets are build-time throwaways.
RUN PROMOTER_SECRET_KEY=build PROMOTER_NOTIFY_SECRET=build PROMOTER_DATA_DIR=/tmp/build \
    python manage.py collectstatic --noinput -v 0 \
    && python -m compileall -q /app \
    && rm -rf /tmp/build

USER 10001:10001
EXPOSE 8000
# No curl in slim images; /healthz answers 200 when the database and registry do.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
ENTRYPOINT ["/bin/sh", "/app/deploy/entrypoint.sh"]
CMD ["web"]
