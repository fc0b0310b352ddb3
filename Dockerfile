# muster: build on the Rust image, run on slim Debian. Redis runs as its own service
# (docker-compose.yml); set MUSTER__REDIS__URL. The image also carries redis-server so a
# single container can run with the embedded one (leave redis.url unset, mount /app/var).
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY benches benches
RUN cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends redis-server ca-certificates \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /src/target/release/muster /usr/local/bin/muster
COPY config config
ENV MUSTER__HTTP__ADDR=0.0.0.0:8080 MUSTER__LOG__FORMAT=json
EXPOSE 8080
ENTRYPOINT ["muster"]
CMD ["serve"]
