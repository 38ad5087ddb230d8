# Stands for: the working static cgo build (e.g. projects that need sqlite on scratch):
# -linkmode external -extldflags -static.
FROM golang:1.22 AS build
WORKDIR /src
COPY . .
RUN CGO_ENABLED=1 go build -ldflags "-linkmode external -extldflags -static" -o /app .

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/
COPY --from=build /app /app
USER 65532
ENTRYPOINT ["/app"]
