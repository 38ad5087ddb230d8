# Stands for: `export CGO_ENABLED=0` early in a long RUN chain (common in Makefile-driven images): it
# holds for every later command of that RUN.
FROM golang:1.22 AS build
WORKDIR /src
COPY . .
RUN export CGO_ENABLED=0 GOOS=linux && go mod download && go build -o /app ./cmd/app

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/
COPY --from=build /app /app
USER 65532:65532
ENTRYPOINT ["/app"]
