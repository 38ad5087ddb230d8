# cgo with both stages on alpine: the builder gets a C compiler, the runtime CA certificates and a user.
FROM golang:1.22-alpine AS build
RUN apk add --no-cache build-base
WORKDIR /src
COPY . .
RUN CGO_ENABLED=1 go build -o /app .

FROM alpine:3.20
RUN apk add --no-cache ca-certificates \
 && adduser -D -u 10001 app
COPY --from=build /app /usr/local/bin/app
USER app
ENTRYPOINT ["/usr/local/bin/app"]
