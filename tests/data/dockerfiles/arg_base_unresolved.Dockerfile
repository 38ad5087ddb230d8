# Stands for: a runtime base chosen by build argument (ARG BASE_IMAGE, as in many CI-built images)
# with no default: lint cannot know its C library.
ARG RUNTIME_IMAGE
FROM golang:1.22 AS build
WORKDIR /src
COPY . .
RUN CGO_ENABLED=0 go build -o /app .

FROM ${RUNTIME_IMAGE}
COPY --from=build /app /app
ENTRYPOINT ["/app"]
