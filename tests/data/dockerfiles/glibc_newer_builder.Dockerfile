# Stands for: a cgo service moved to golang:1.25 (Debian 13, glibc 2.41) while its runtime stays on
# distroless base-debian12 (glibc 2.36): the binary may ask for GLIBC_2.38+ symbols.
FROM golang:1.25 AS build
WORKDIR /src
COPY . .
RUN go build -o /app .

FROM gcr.io/distroless/base-debian12:nonroot
COPY --from=build /app /app
ENTRYPOINT ["/app"]
