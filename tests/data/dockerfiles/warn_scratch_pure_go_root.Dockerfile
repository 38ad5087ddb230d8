# Pure Go on scratch: starts, but has no CA bundle and runs as root (warnings, exit 0).
FROM golang:1.22-alpine AS build
WORKDIR /src
COPY . .
RUN go build -o /app .

FROM scratch
COPY --from=build /app /app
USER 0
ENTRYPOINT ["/app"]
