# Stands for: the BuildKit heredoc style of Docker's own Go guide (RUN <<EOF ... EOF), pure Go.
# syntax=docker/dockerfile:1
FROM golang:1.22 AS build
WORKDIR /src
COPY . .
RUN <<EOF
set -e
go mod download
CGO_ENABLED=0 go build -trimpath -o /app ./cmd/server
EOF

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /app /app
ENTRYPOINT ["/app"]
