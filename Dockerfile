# syntax=docker/dockerfile:1
#
# Backfill control-integration service: one image, two commands.
#
#   service (default):  docker run -p 8000:8000 --env-file backfill.env backfill-service
#   simulator:          docker run -p 4840:4840 backfill-service \
#                           python -m service.simulator --host 0.0.0.0 --port 4840
#
# The simulator does not serve HTTP, so the image's HEALTHCHECK (GET /healthz on
# port 8000) does not apply to it: deploy/compose.yaml gives it a TCP check instead.
#
# Both stages use the same base image, so the venv's interpreter symlink
# (/opt/venv/bin/python -> /usr/local/bin/python3.11) resolves in the final stage.

# --- builder: wheels of the project and every dependency, installed into a venv ----
FROM python:3.11-slim AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# The dependencies ship manylinux wheels for amd64 and arm64; the compiler is here
# only for an architecture where one of them has to be built from source. It stays
# in this stage.
RUN apt-get update \
    && apt-get install --yes --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
# The dependencies' wheels first, from pyproject.toml alone: a change to the service's
# code reuses this layer instead of fetching and building every dependency again.
COPY pyproject.toml ./
RUN python -c "import tomllib; project = tomllib.load(open('pyproject.toml', 'rb'))['project']; open('/tmp/requirements.txt', 'w').write('\n'.join(project['dependencies']) + '\n')" \
    && python -m pip wheel --wheel-dir /wheels --requirement /tmp/requirements.txt

# pyproject.toml names README.md as the package readme, so the build needs it.
COPY README.md ./
COPY service ./service

# The import check runs from / so that it loads the installed package, not ./service.
RUN python -m pip wheel --no-deps --wheel-dir /wheels . \
    && python -m venv /opt/venv \
    && /opt/venv/bin/python -m pip install --no-index --find-links /wheels backfill-service \
    && /opt/venv/bin/python -m pip uninstall --yes pip \
    && cd / \
    && /opt/venv/bin/python -c "import service.simulator, service.app"

# --- runtime: the venv and nothing else -------------------------------------------
FROM python:3.11-slim AS runtime

LABEL org.opencontainers.image.title="backfill-service" \
      org.opencontainers.image.description="Control-integration service for mine paste backfill plants"

# A fixed uid/gid so Kubernetes (runAsUser, fsGroup) and host volumes can rely on it.
RUN groupadd --system --gid 10001 backfill \
    && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home \
       --shell /usr/sbin/nologin backfill \
    && mkdir -p /data \
    && chown 10001:10001 /data \
    && chmod 0750 /data

COPY --from=builder /opt/venv /opt/venv

# /data is the working directory: the SQLite default lives there, and so does the
# file of generated development keys when BACKFILL_API_KEYS is not set.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    BACKFILL_DATABASE_URL=sqlite+aiosqlite:////data/backfill.db

WORKDIR /data
VOLUME ["/data"]
USER 10001:10001
EXPOSE 8000

# python:3.11-slim has no curl or wget; the standard library does the request.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]

CMD ["python", "-m", "service", "--host", "0.0.0.0", "--port", "8000"]
