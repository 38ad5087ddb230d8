# Stands for: a service plus a health-check binary built in one RUN (as in many Kubernetes operators'
# Dockerfiles): CGO_ENABLED=0 applies to the second command only, so /app is still a cgo binary.
FROM golang:1.22 AS build
WORKDIR /src
COPY . .
RUN go build -o /app . && CGO_ENABLED=0 go build -o /hc ./cmd/hc

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/
COPY --from=build /app /app
COPY --from=build /hc /hc
USER 65532:65532
ENTRYPOINT ["/app"]
