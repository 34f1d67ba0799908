# deyehard: the server and the collector in one small image.
#
#   docker build -t deyehard .
#   docker run -p 8000:8000 -p 10000:10000 -v deyehard:/data deyehard
#
# Runs `deyehard-server serve` (web app :8000, Solarman collector :10000, SQLite in /data)
# unless told otherwise; `docker-compose.yml` runs it with TimescaleDB and a separate
# collector. Configuration: environment variables (see the README's table) or a TOML file
# named by DEYEHARD_CONFIG.

# ---- build ------------------------------------------------------------------------------
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# The web assets are committed (bins/server/static/) and embedded: no npm step here.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p deyehard-server -p deyehard-collector \
 && install -D -m 0755 target/release/deyehard-server /out/deyehard-server \
 && install -D -m 0755 target/release/deyehard-collector /out/deyehard-collector

# ---- run --------------------------------------------------------------------------------
# The binaries need only glibc (SQLite is bundled, TLS roots are compiled in).
FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin deyehard \
 && install -d -o deyehard -g deyehard -m 0700 /data
COPY --from=build /out/ /usr/local/bin/
USER 10001:10001
WORKDIR /data
ENV DEYEHARD_DATA_DIR=/data \
    DEYEHARD_LOG_FORMAT=json
VOLUME ["/data"]
EXPOSE 8000 10000
# The binary probes itself (GET /readyz on its --listen port); the image has no curl.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["deyehard-server", "healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["deyehard-server"]
CMD ["serve"]
