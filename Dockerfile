# Multi-stage build: compile in the Rust image, run as a non-root user in a small Debian image.
# The web client is built in its own stage when web/ has one.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin confab

FROM node:20-bookworm-slim AS web
WORKDIR /web
COPY web/ ./
RUN if [ -f package.json ]; then npm ci --no-audit --no-fund && npm run build; else mkdir -p dist; fi

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/confab --create-home confab
COPY --from=build /src/target/release/confab /usr/local/bin/confab
COPY --from=web /web/dist /usr/share/confab/web
USER confab
WORKDIR /var/lib/confab
ENV CONFAB_LISTEN=0.0.0.0:8080 \
    CONFAB_DATA_DIR=/var/lib/confab \
    CONFAB_WEB_DIR=/usr/share/confab/web
EXPOSE 8080
HEALTHCHECK --interval=5s --timeout=3s CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["confab"]
CMD ["serve"]
