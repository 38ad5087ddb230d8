# Stands for: an older golang:1.19-alpine builder without build-base: before Go 1.20 cgo stays on
# without a C compiler (the standard library's cgo parts are precompiled), so the binary needs musl.
FROM golang:1.19-alpine AS build
WORKDIR /src
COPY . .
RUN go build -o /app .

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/
COPY --from=build /app /app
USER 65532
ENTRYPOINT ["/app"]
