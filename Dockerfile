# Promoter web and worker image. Build: docker build -t promoter .
FROM python:3.13-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    PROMOTER_DATA_DIR=/data PROMOTER_STATIC_ROOT=/app/staticfiles PROMOTER_MANIFEST_STATIC=1

WORKDIR /app
RUN useradd --system --uid 10001 --home-dir /app promoter \
    && mkdir -p /data && chown promoter /data
COPY pyproject.toml ./
RUN pip install --no-cache-dir .
COPY --chown=promoter . .
# collectstatic needs settings but no database; the secret is a build-time throwaway.
RUN PROMOTER_SECRET_KEY=build PROMOTER_NOTIFY_SECRET=build PROMOTER_DATA_DIR=/tmp/build \
    python manage.py collectstatic --noinput -v 0 && rm -rf /tmp/build

USER promoter
EXPOSE 8000
ENTRYPOINT ["gunicorn", "promoter.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--threads", "4", "--timeout", "120", "--access-logfile", "-"]
