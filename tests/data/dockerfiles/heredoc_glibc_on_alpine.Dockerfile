# Stands for: a heredoc build on the Debian golang image (cgo on by default: gcc is there) shipped on
# alpine, the classic `exec /app: no such file or directory`.
# syntax=docker/dockerfile:1
FROM golang:1.23 AS build
WORKDIR /src
COPY . .
RUN <<-EOT
	go build -o /app .
	EOT
COPY <<EOF /etc/app.conf
CGO_ENABLED=0 is only text here
EOF

FROM alpine:3.20
COPY --from=build /app /app
USER 10001
ENTRYPOINT ["/app"]
