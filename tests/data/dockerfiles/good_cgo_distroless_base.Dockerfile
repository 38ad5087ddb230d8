# cgo on a glibc builder, run on distroless/base (glibc), non-root.
ARG GO_VERSION=1.22
FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ENV CGO_ENABLED=1
RUN go build -o /app ./cmd/server

FROM gcr.io/distroless/base-debian12:nonroot
COPY --from=build /app /app
ENTRYPOINT ["/app"]
