FROM golang:1.22 AS builder
WORKDIR /src
COPY . .
ENV CGO_ENABLED=1 GOOS=linux
RUN go build -tags netcgo -o /app .

FROM scratch
COPY --from=builder /app /app
ENTRYPOINT ["/app"]
