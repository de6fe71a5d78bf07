# envgate, for running `envgate serve` (the GitHub App bot) or the CLI.
#   docker build -t envgate .
#   docker run -p 8080:8080 -e ENVGATE_GITHUB_APP_ID=… -v /run/secrets:/run/secrets:ro envgate
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin envgate

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates git \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/envgate --create-home envgate
COPY --from=build /src/target/release/envgate /usr/local/bin/envgate
USER envgate
WORKDIR /var/lib/envgate
ENV ENVGATE_LISTEN=0.0.0.0:8080 \
    ENVGATE_CONTROL_STORE=sqlite:///var/lib/envgate/state.db
EXPOSE 8080
ENTRYPOINT ["envgate"]
CMD ["serve", "--log-format", "json"]
