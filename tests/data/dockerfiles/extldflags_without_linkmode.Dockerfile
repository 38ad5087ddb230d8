# Stands for: the "static cgo build" copied from blog posts, -ldflags '-extldflags=-static' without
# -linkmode external: with only the standard library using cgo, Go links internally and ignores it.
FROM golang:1.22 AS build
WORKDIR /src
COPY . .
RUN CGO_ENABLED=1 go build -ldflags '-s -w -extldflags=-static' -o /app .

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/
COPY --from=build /app /app
USER 65532
ENTRYPOINT ["/app"]
