# The trap: cgo is on by default in golang:1.22 (Debian, glibc); the binary is copied into alpine (musl).
FROM golang:1.22 AS builder
WORKDIR /src
COPY . .
RUN go build -o /app .

FROM alpine:3.20
RUN apk add --no-cache ca-certificates
COPY --from=builder /app /app
USER 65532
CMD ["/app"]
