# Stands for: cgo services on debian:bookworm-slim that forget ca-certificates (not in minbase).
FROM golang:1.22-bookworm AS build
WORKDIR /src
COPY . .
RUN go build -o /app .

FROM debian:12-slim
RUN useradd -u 10001 app
COPY --from=build /app /app
USER app
ENTRYPOINT ["/app"]
