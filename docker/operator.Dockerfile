# syntax=docker/dockerfile:1.7
#
# The Bananas operator image (kopf). Build from the repository root:
#
#   docker build -f docker/operator.Dockerfile -t bananas-operator:dev .
#
# Non-root (uid/gid 10001), read-only root filesystem friendly (/tmp is an
# emptyDir in the Deployment). Port 8080 serves Prometheus metrics, 8081
# kopf's liveness endpoint (/healthz). The Python base is pinned by tag; pin it
# by digest for reproducible builds.
ARG PYTHON_IMAGE=python:3.12.8-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bananas ./bananas
RUN python -m venv /opt/bananas \
 && /opt/bananas/bin/pip install ".[operator]" \
 && /opt/bananas/bin/python -m compileall -q /opt/bananas

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="bananas-operator" \
      org.opencontainers.image.description="Bananas Kubernetes operator: WorkerPool and CronSchedule" \
      org.opencontainers.image.licenses="MIT"
RUN groupadd --system --gid 10001 bananas \
 && useradd --system --uid 10001 --gid bananas --no-create-home \
      --shell /usr/sbin/nologin bananas
COPY --from=build /opt/bananas /opt/bananas
ENV PATH=/opt/bananas/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LOG_FORMAT=json \
    METRICS_PORT=8080 \
    LIVENESS_ENDPOINT=http://0.0.0.0:8081/healthz
USER 10001:10001
EXPOSE 8080 8081
ENTRYPOINT ["python", "-m", "bananas.operator"]
