# syntax=docker/dockerfile:1
# One static binary serving every subcommand (migrate, serve, sandbox), on a
# distroless runtime that runs as non-root and has no shell.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags="-s -w" -o /out/sweeper ./cmd/sweeper

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/sweeper /usr/local/bin/sweeper
USER 65532:65532
EXPOSE 8080 8090
ENTRYPOINT ["/usr/local/bin/sweeper"]
CMD ["serve"]
