# pathwatch: multi-stage build, static-ish runtime on distroless, non-root.
# Build:  docker build -t pathwatch .
# Run:    docker run -p 9778:9778 -v $PWD/examples:/etc/pathwatch:ro pathwatch \
#           serve --config /etc/pathwatch/local.yaml
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Dependencies first, in their own layer: source edits do not rebuild them.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src
COPY src src
# Cargo compares modification times: make sure the real sources are newer than the stubs.
RUN touch src/main.rs src/lib.rs && cargo build --release --locked

# distroless/cc has glibc and CA certificates, no shell, and runs as uid 65532 ("nonroot").
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/pathwatch /usr/local/bin/pathwatch
USER nonroot:nonroot
EXPOSE 9778
# No HEALTHCHECK: the image has no shell or curl; orchestrators probe /healthz and /readyz
# over HTTP themselves (see k8s/).
ENTRYPOINT ["/usr/local/bin/pathwatch"]
CMD ["serve", "--config", "/etc/pathwatch/pathwatch.yaml", "--listen", "0.0.0.0:9778"]
