# syntax=docker/dockerfile:1
# The server binary on distroless (no shell, no package manager), run as the
# image's non-root user. The compose file's health checks use
# `server healthcheck`, since there is no curl either.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
# Only the packages the binary is built from (.dockerignore keeps the rest of
# the repository, .env and .data/ above all, out of the context).
COPY api/ api/
COPY cmd/server/ cmd/server/
COPY db/embed.go db/
COPY db/migrations/ db/migrations/
COPY db/functions/ db/functions/
COPY internal/ internal/
ARG VERSION=docker
# The module and build caches survive between builds; only the modules this
# binary needs are downloaded (not the tools and test dependencies in go.mod).
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags "-X ldkbackup/internal/app.Version=${VERSION}" -o /out/server ./cmd/server

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/server /server
# Inside a container the listeners must accept connections from outside it;
# the public port and the admin port (/metrics) are published separately.
ENV HOST=0.0.0.0 PORT=3003 ADMIN_ADDR=0.0.0.0:9090
EXPOSE 3003 9090
USER nonroot:nonroot
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["/server", "healthcheck"]
ENTRYPOINT ["/server"]
CMD ["serve"]
