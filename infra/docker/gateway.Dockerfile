# syntax=docker/dockerfile:1
# The gateway: build a wheel with uv, install only the wheel into a slim runtime, run as non-root.
FROM python:3.11-slim-bookworm AS build
COPY --from=ghcr.io/astral-sh/uv:0.9 /uv /usr/local/bin/uv
WORKDIR /src
COPY pyproject.toml uv.lock README.md ./
COPY src ./src
COPY templates ./templates
RUN uv build --wheel --out-dir /dist \
 && uv export --frozen --no-dev --extra redis --no-emit-project --format requirements-txt > /dist/requirements.txt

FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 switchboard
COPY --from=build /dist /dist
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --require-hashes -r /dist/requirements.txt \
 && /opt/venv/bin/pip install --no-cache-dir --no-deps /dist/*.whl \
 && rm -rf /dist
ENV PATH=/opt/venv/bin:$PATH \
    SWITCHBOARD_HOST=0.0.0.0 SWITCHBOARD_PORT=8000 SWITCHBOARD_DATA_DIR=/var/lib/switchboard \
    PYTHONUNBUFFERED=1
RUN mkdir -p /var/lib/switchboard && chown switchboard /var/lib/switchboard
USER 10001
WORKDIR /home/switchboard
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s CMD ["curl", "-fsS", "http://127.0.0.1:8000/healthz"]
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["switchboard", "serve"]
