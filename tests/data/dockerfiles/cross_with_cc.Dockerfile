# Stands for: the same cross build with a cross C compiler (xx-clang / CC=aarch64-linux-gnu-gcc, as in
# projects that need cgo on arm64): cgo stays on, and the binary needs glibc.
FROM --platform=$BUILDPLATFORM golang:1.22 AS build
ARG TARGETARCH
WORKDIR /src
COPY . .
RUN CC=aarch64-linux-gnu-gcc GOARCH=$TARGETARCH go build -o /app .

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /app /app
ENTRYPOINT ["/app"]
