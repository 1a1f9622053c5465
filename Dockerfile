# syntax=docker/dockerfile:1
#
# idsync's image, built the conventional way. `make image` builds the same layout without a
# container engine (internal/packaging; the tests hold both to the same user, paths and port):
#
#   docker build -t idsync:dev \
#     --build-arg VERSION="$(git describe --tags --always --dirty)" \
#     --build-arg REVISION="$(git rev-parse HEAD)" .
#   docker run -v idsync-state:/var/lib/idsync \
#     -v "$PWD/idsync.yaml:/etc/idsync/idsync.yaml:ro" -p 8080:8080 idsync:dev
#
# The config must listen on all interfaces inside the container (listen: "0.0.0.0:8080").

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG REVISION=unknown
# Static (no libc in the runtime image), without build paths, with the build identity.
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-X github.com/idsync/idsync/internal/version.Version=${VERSION} -X github.com/idsync/idsync/internal/version.Revision=${REVISION}" \
      -o /out/idsync ./cmd/idsync \
 && mkdir -m 0700 /out/state

# CA certificates, /etc/passwd with nonroot (65532), /tmp; no shell.
FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="idsync" \
      org.opencontainers.image.description="Keeps Jira Cloud users, groups and JSM customers in line with identity providers (miniOrange, SCIM 2.0)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="https://github.com/idsync/idsync" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="The idsync Authors"
COPY --from=build /out/idsync /usr/local/bin/idsync
COPY --from=build --chown=65532:65532 /out/state /var/lib/idsync
ENV IDSYNC_CONFIG=/etc/idsync/idsync.yaml
USER 65532:65532
WORKDIR /var/lib/idsync
VOLUME /var/lib/idsync
EXPOSE 8080/tcp
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/idsync", "run"]
CMD ["-c", "/etc/idsync/idsync.yaml"]
