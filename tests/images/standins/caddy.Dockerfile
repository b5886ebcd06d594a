# Stand-in for the official caddy image: Debian's caddy, same paths (/etc/caddy/Caddyfile,
# /data, /config) and wget for the health check, as in the official image.
# Built with tests/images/standins as the context.
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends caddy wget \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /data /config
ENV XDG_CONFIG_HOME=/config XDG_DATA_HOME=/data
EXPOSE 80 443
CMD ["caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]
