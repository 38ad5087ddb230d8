# Stands for: the plain `FROM alpine` runtime of countless small services: it has a CA bundle
# (ca-certificates-bundle) and a shell, so running as root is a note, not a warning.
FROM golang:1.22-alpine AS build
WORKDIR /src
COPY . .
RUN go build -o /app .

FROM alpine:3.20
COPY --from=build /app /usr/local/bin/app
ENTRYPOINT ["/usr/local/bin/app"]
