# syntax=docker/dockerfile:1
# pgninja: PostgreSQL wire-protocol proxy.
#   docker build -t pgninja .
#   docker run -p 6432:6432 -p 9432:9432 -v $PWD/pgninja.yaml:/etc/pgninja/pgninja.yaml:ro pgninja

# ---- build: cgo is required by pg_query_go (the real PostgreSQL parser) ----
FROM golang:1.26-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=1 go build -trimpath -ldflags="-s -w" -o /out/pgninja ./cmd/pgninja

# ---- runtime ----
FROM debian:bookworm-slim
# postgresql-client provides pg_dump/psql for the backup sidecar.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates postgresql-client \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system pgninja \
 && useradd --system --gid pgninja --home-dir /var/lib/pgninja --create-home --shell /usr/sbin/nologin pgninja \
 && mkdir -p /etc/pgninja \
 && chown pgninja:pgninja /etc/pgninja
COPY --from=build /out/pgninja /usr/local/bin/pgninja
USER pgninja
WORKDIR /var/lib/pgninja
# 6432: client connections (PostgreSQL protocol); 9432: admin / metrics.
# pgninja listens on loopback by default: for these ports to be reachable from
# outside the container, the mounted config must set `listen` and
# `admin_listen` to all interfaces (or use PGNINJA_LISTEN / PGNINJA_ADMIN_LISTEN).
EXPOSE 6432 9432
ENTRYPOINT ["/usr/local/bin/pgninja"]
CMD ["serve","--config","/etc/pgninja/pgninja.yaml"]
