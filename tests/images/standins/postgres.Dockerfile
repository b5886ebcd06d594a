# Stand-in for the official postgres image (no registry reachable here): Debian's PostgreSQL 15
# with the same contract — POSTGRES_USER, POSTGRES_DB, POSTGRES_PASSWORD(_FILE), data in
# /var/lib/postgresql/data, pg_isready on PATH, the server running as postgres.
# Built with tests/images/standins as the context.
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/postgresql/data /var/run/postgresql \
 && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql
COPY postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint.sh
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data
# the package's own user (its id is whatever Debian gave it)
# hadolint ignore=DL3066
USER postgres
EXPOSE 5432
ENTRYPOINT ["bash", "/usr/local/bin/postgres-entrypoint.sh"]
CMD ["postgres"]
