# syntax=docker/dockerfile:1
# The gateway: build a wheel with uv (from PyPI, pinned), install only the locked requirements
# (hash-checked) and the wheel into a slim runtime; non-root, read-only root file system ready
# (state only in /var/lib/switchboard), health = readiness.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG UV_VERSION=0.13.9
# Package index: PyPI unless a build arg names a mirror. Behind a TLS-intercepting proxy, pass its
# CA bundle (mounted into the build) as PIP_CERT and SSL_CERT_FILE; unset, the defaults apply.
ARG PIP_INDEX_URL=https://pypi.org/simple
ARG PIP_CERT
ARG SSL_CERT_FILE
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 UV_INDEX_URL=${PIP_INDEX_URL} UV_PYTHON_DOWNLOADS=never
RUN python -m venv /opt/uv \
 && /opt/uv/bin/pip install --no-cache-dir "uv==${UV_VERSION}"
WORKDIR /src
COPY pyproject.toml uv.lock README.md ./
COPY src ./src
COPY templates ./templates
RUN /opt/uv/bin/uv build --wheel --out-dir /dist \
 && /opt/uv/bin/uv export --frozen --no-dev --extra redis --no-emit-project \
      --format requirements-txt --output-file /dist/requirements.txt

FROM ${PYTHON_IMAGE}
ARG PIP_INDEX_URL=https://pypi.org/simple
ARG PIP_CERT
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 --user-group switchboard
COPY --from=build /dist /dist
# The lock is complete, so both installs take --no-deps: the locked requirements hash-checked
# (pip re-resolving `pydantic[email]` in hash mode fails), then the project's own wheel (no hash
# in the lock); `pip check` proves nothing is missing.
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --no-deps --require-hashes -r /dist/requirements.txt \
 && /opt/venv/bin/pip install --no-cache-dir --no-deps /dist/*.whl \
 && /opt/venv/bin/pip check \
 && rm -rf /dist \
 && mkdir -p /var/lib/switchboard \
 && chown switchboard:switchboard /var/lib/switchboard
ENV PATH=/opt/venv/bin:$PATH \
    SWITCHBOARD_HOST=0.0.0.0 SWITCHBOARD_PORT=8000 SWITCHBOARD_DATA_DIR=/var/lib/switchboard \
    PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
VOLUME ["/var/lib/switchboard"]
USER 10001:10001
WORKDIR /var/lib/switchboard
EXPOSE 8000
# Readiness, not liveness: unhealthy while the database or every model server is unreachable.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8000/readyz"]
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["switchboard", "serve"]
