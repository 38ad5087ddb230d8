FROM golang:1.22-alpine AS build
WORKDIR /src
COPY . .
RUN CGO_ENABLED=1 go build -o /app .

FROM alpine:3.20
RUN apk add --no-cache ca-certificates
COPY --from=build /app /app
USER 10001:10001
ENTRYPOINT ["/app"]
