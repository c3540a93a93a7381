# syntax=docker/dockerfile:1
#
# nats-server built from the version go.mod pins (the one stompd's tests run against), on distroless.
# Build from the repository root:
#
#   docker build -f deploy/nats.Dockerfile -t stompd-nats:2.15.3 .

FROM --platform=$BUILDPLATFORM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
ARG TARGETOS TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w" -o /out/nats-server github.com/nats-io/nats-server/v2

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/nats-server /nats-server
USER nonroot:nonroot
# 4222: clients (stompd). 6222: routes between the servers. 8222: monitoring.
EXPOSE 4222 6222 8222
ENTRYPOINT ["/nats-server"]
