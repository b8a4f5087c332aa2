# The Prefect worker that runs ia-continu's flows (deployments of prefect.yaml): on the process
# pool in docker-compose, on the Kubernetes pool in deploy/k8s (where it is also the image of
# the flow-run Jobs). docker/worker-entrypoint.sh says how the pool is chosen.
#
#   docker build -f docker/worker.Dockerfile -t ia-continu-worker .
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_NO_CACHE=1 \
    MLFLOW_DISABLE_TELEMETRY=true \
    PREFECT_SERVER_ANALYTICS_ENABLED=false \
    IA_CONTINU_DATA_DIR=/app/data

RUN pip install --no-cache-dir uv==0.13.9

WORKDIR /app

COPY docker/requirements.lock /tmp/requirements.lock
RUN uv pip install --system --compile-bytecode -r /tmp/requirements.lock

COPY pyproject.toml README.md prefect.yaml ./
COPY api ./api
COPY ia_continu ./ia_continu
COPY flows ./flows
COPY deployments ./deployments
COPY notifications ./notifications
COPY docker/worker-entrypoint.sh /usr/local/bin/worker-entrypoint.sh
RUN uv pip install --system --compile-bytecode --no-deps . \
    && chmod 0755 /usr/local/bin/worker-entrypoint.sh \
    && useradd --uid 10001 --user-group --create-home --home-dir /home/app app \
    && mkdir -p /app/data /home/app/.prefect \
    && chown -R app:app /app /home/app/.prefect

USER 10001:10001

# `prefect worker start --with-healthcheck` serves /health on 8080 while the worker polls.
HEALTHCHECK --interval=30s --timeout=10s --start-period=120s --retries=5 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=8)"]

ENTRYPOINT ["/usr/local/bin/worker-entrypoint.sh"]
