# syntax=docker/dockerfile:1
# vLLM's router (the `vllm-router` wheel from PyPI: a Rust load balancer behind a small Python
# launcher) in front of the vLLM replicas on Kubernetes (infra/k8s/). No upstream image is
# published, so we build it like our other images: the locked requirements, hash-checked, on
# the same Debian base; non-root, nothing written outside /tmp.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE}
# Package index: PyPI unless a build arg names a mirror. Behind a TLS-intercepting proxy, pass its
# CA bundle (mounted into the build) as PIP_CERT; unset, the defaults apply.
ARG PIP_INDEX_URL=https://pypi.org/simple
ARG PIP_CERT
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
COPY infra/docker/router-requirements.txt /tmp/requirements.txt
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --no-create-home --uid 10001 --user-group --shell /usr/sbin/nologin router \
 && python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --require-hashes -r /tmp/requirements.txt \
 && /opt/venv/bin/pip check \
 && rm /tmp/requirements.txt
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 HOME=/tmp
USER 10001:10001
WORKDIR /tmp
# 8000: the OpenAI-compatible API (and /liveness, /readiness); 29000: Prometheus metrics
EXPOSE 8000 29000
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/liveness', timeout=4)"]
ENTRYPOINT ["/usr/bin/tini", "--", "vllm-router"]
# Listen on every address; the Kubernetes Deployment passes its own flags (policy, discovery).
CMD ["--host", "0.0.0.0", "--port", "8000", "--prometheus-host", "0.0.0.0", "--prometheus-port", "29000"]
