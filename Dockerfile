# blockroute: build once (quickfix compiles from source), run as a non-root user.
FROM python:3.11-slim-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY router ./router
COPY simulators ./simulators
COPY dealers ./dealers
COPY models ./models
COPY bench ./bench
RUN pip wheel --wheel-dir /wheels .

FROM python:3.11-slim-bookworm
RUN useradd --create-home --uid 10001 blockroute
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
WORKDIR /app
COPY config ./config
COPY models ./models
ENV BLOCKROUTE_CONFIG_DIR=/app/config \
    NUMBA_CACHE_DIR=/tmp/numba-cache \
    PYTHONUNBUFFERED=1
# the service's journal and FIX message store (`serve --data-dir /app/data`)
RUN mkdir /app/data && chown blockroute /app/data
VOLUME /app/data
# FIX acceptor, HTTP API and dashboard
EXPOSE 9878 8080
USER blockroute
ENTRYPOINT ["blockroute"]
# The service: docker run -p 9878:9878 -p 8080:8080 -e BLOCKROUTE_FIX_PASSWORD_OMS=...
#   -e BLOCKROUTE_API_TOKEN=... blockroute serve --data-dir /app/data --http-host 0.0.0.0
CMD ["simulate", "--scenario", "news-shock"]
