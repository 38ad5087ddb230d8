# Stands for: the multi-platform pattern of docker buildx guides: FROM --platform=$BUILDPLATFORM with
# GOOS/GOARCH from TARGETOS/TARGETARCH; cross-compiling turns cgo off when CC is not set.
FROM --platform=$BUILDPLATFORM golang:1.22 AS build
ARG TARGETOS
ARG TARGETARCH
WORKDIR /src
COPY . .
RUN GOOS=$TARGETOS GOARCH=$TARGETARCH go build -o /app .

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /app /app
ENTRYPOINT ["/app"]
