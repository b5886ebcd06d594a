# Stand-in for the official prom/prometheus image: Debian's prometheus (2.42), same contract as
# the compose file uses it — flags as the command, config in /etc/prometheus, data in
# /prometheus, wget for the health check, running as nobody.
# Built with tests/images/standins as the context.
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends prometheus wget \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /prometheus /etc/prometheus \
 && chown nobody:nogroup /prometheus
# the base image's own unprivileged user, as in the official image
# hadolint ignore=DL3066
USER nobody
WORKDIR /prometheus
EXPOSE 9090
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
