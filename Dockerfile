# syntax=docker/dockerfile:1
# One static image for every target: /usr/local/bin/mailstore (choose the
# role with -target=) and /usr/local/bin/mailctl. It runs as the numeric
# non-root user 65532 on a read-only root; /data is the only writable path
# (the embedded backends and temporary files of `-target=all`). Kubernetes
# mounts emptyDirs for /tmp and the spool instead (deploy/helm, deploy/k8s).
#
#   docker build -t mailstore .
#   docker run --rm -p 1143:1143 -p 9200:9200 mailstore     # -target=all
#
# The Go version follows go.mod.
ARG GO_VERSION=1.26

FROM golang:${GO_VERSION} AS build
WORKDIR /src
# Modules first, so a source change does not download them again (the root
# go.mod replaces the proto module with ./proto, so no go.work is needed).
COPY go.mod go.sum go.work go.work.sum ./
COPY proto/go.mod proto/go.sum ./proto/
RUN --mount=type=cache,target=/go/pkg/mod GOWORK=off go mod download
COPY . .
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags="-s -w -buildid=" \
      -o /out/ ./cmd/mailstore ./cmd/mailctl \
 && mkdir -p /out/data

FROM scratch
# CA certificates for S3 and Redis over TLS.
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/mailstore /out/mailctl /usr/local/bin/
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
WORKDIR /data
ENV TMPDIR=/data
# http (health, metrics), metadata gRPC, blob gRPC, IMAP, IMAPS, POP3, POP3S, LMTP.
EXPOSE 9200 9201 9202 1143 1993 1110 1995 1024
ENTRYPOINT ["/usr/local/bin/mailstore"]
# -target=all on the embedded backends, reachable from outside the container.
CMD ["-target=all", "-data-dir=/data", \
     "-server.http-listen-address=0.0.0.0:9200", \
     "-imap.listen-address=0.0.0.0:1143", "-imap.tls-listen-address=0.0.0.0:1993", \
     "-pop3.listen-address=0.0.0.0:1110", "-pop3.tls-listen-address=0.0.0.0:1995", \
     "-lmtp.listen-address=0.0.0.0:1024"]
