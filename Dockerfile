# syntax=docker/dockerfile:1
# The Service Portal image: web (gunicorn), RQ workers, scheduler and migrations all run from it
# (deploy/entrypoint.sh web|worker|scheduler|migrate). See README.md "Deployment" and
# docker-compose.production.yml, which runs it read-only with every capability dropped.

# The Debian release is named, not left to the tag's default: it decides which PostgreSQL client
# Debian ships (trixie: 17), and backups refuse a pg_dump of another major version than the server,
# so PG_MAJOR must equal the postgres image's major in docker-compose.production.yml.
FROM python:3.11-slim-trixie

ARG PG_MAJOR=17

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# pg_dump and psql for backups and restores (Debian's package, the server's major version).
RUN apt-get update \
    && apt-get install -y --no-install-recommends "postgresql-client-${PG_MAJOR}" \
    && rm -rf /var/lib/apt/lists/*

# Runtime dependencies only: never requirements-embedded.txt (the development servers) nor
# requirements-dev.txt (.dockerignore keeps both out of the build context).
COPY requirements.txt /app/requirements.txt
RUN python -m venv /opt/venv \
    && pip install --no-cache-dir -r /app/requirements.txt

# The code belongs to root and is only readable by the portal's user; bytecode is compiled now
# because the running container cannot write next to the sources.
COPY . /app
WORKDIR /app
RUN python -m compileall -q /app/portal /app/jobs /app/migrations /app/wsgi.py /app/gunicorn.conf.py \
    && chmod -R u=rwX,go=rX /app /opt/venv \
    && chmod 0755 /app/deploy/entrypoint.sh /app/scripts/*.sh

# The one account the processes run as (UID/GID 1000), without a home or a login shell. It writes only
# to /tmp and /run (tmpfs in compose; /run/portal is its own when /run is not a tmpfs) and to the
# three volumes below.
RUN groupadd --system --gid 1000 portal \
    && useradd --system --uid 1000 --gid 1000 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin portal \
    && mkdir -p /data /logs /backups /run/portal \
    && chown 1000:1000 /data /logs /backups /run/portal \
    && chmod 0750 /data /logs /backups /run/portal

ENV APP_ENV=production \
    HOST=0.0.0.0 \
    PORT=5000 \
    INSTANCE_DIR=/data \
    UPLOAD_DIR=/data/uploads \
    EXPORT_DIR=/data/exports \
    MAIL_DIR=/data/mail \
    LOG_DIR=/logs \
    BACKUP_DIR=/backups \
    PG_DUMP=/usr/lib/postgresql/${PG_MAJOR}/bin/pg_dump \
    PROMETHEUS_MULTIPROC_DIR=/run/portal/prometheus \
    TZ=UTC

# Attachments, exports and mail files (shared by web and workers), logs, backups.
VOLUME ["/data", "/logs", "/backups"]

USER 1000:1000
EXPOSE 5000

# /health is 200 while the database answers (Redis, workers or scheduler down only make it
# "degraded") and 503 when it does not. No curl in slim images: deploy/healthcheck.py uses urllib
# with a 5 s timeout, over HTTPS when SSL_CERT_FILE/SSL_KEY_FILE are set.
HEALTHCHECK --interval=30s --timeout=10s --start-period=40s --retries=3 \
    CMD ["python", "/app/deploy/healthcheck.py", "web", "/health"]

ENTRYPOINT ["/app/deploy/entrypoint.sh"]
CMD ["web"]
