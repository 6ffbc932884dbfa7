# Strongroom's server image: one static-ish binary (cgo, for PKCS#11) on
# distroless, running as the unprivileged "nonroot" user (65532).
#
#   docker build -t strongroom --build-arg VERSION=0.1.0 .
#   docker run --rm strongroom version
#
# The base has glibc, libgcc and libstdc++, which HSM vendors' PKCS#11
# libraries need; it has no shell and no package manager. See
# docs/deployment.md for the files the server reads.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=devel
RUN CGO_ENABLED=1 go build -trimpath -buildvcs=false -ldflags "-s -w -X main.version=${VERSION}" -o /out/strongroom ./cmd/strongroom

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/strongroom /usr/local/bin/strongroom
USER 65532:65532
EXPOSE 8443
ENTRYPOINT ["/usr/local/bin/strongroom"]
CMD ["server", "--config", "/etc/strongroom/config.yaml"]
