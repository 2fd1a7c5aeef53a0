# syntax=docker/dockerfile:1.7
#
# The Bananas runtime image: `bananas worker` by default, `bananas scheduler`
# with other arguments. Build from the repository root:
#
#   docker build -f docker/worker.Dockerfile -t bananas:dev .
#
# Applications build on it and add their handler module, for example:
#
#   FROM bananas:dev
#   COPY --chown=10001:10001 myapp/ /app/myapp/
#   ENV BANANAS_APP=myapp.tasks
#
# Non-root (uid/gid 10001), no compiler or pip cache in the final stage, and it
# runs with a read-only root filesystem (only /tmp needs to be writable, which
# the operator mounts as an emptyDir). The Python base is pinned by tag; pin it
# by digest (python:3.12.8-slim-bookworm@sha256:...) for reproducible builds.
ARG PYTHON_IMAGE=python:3.12.8-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bananas ./bananas
# The operator extra brings kubernetes-asyncio, which the scheduler needs for
# `--leader-election kubernetes` (a coordination.k8s.io Lease); the dashboard extra
# lets the same image run `bananas dashboard`.
RUN python -m venv /opt/bananas \
 && /opt/bananas/bin/pip install ".[operator,dashboard]" \
 && /opt/bananas/bin/python -m compileall -q /opt/bananas

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="bananas" \
      org.opencontainers.image.description="Bananas task queue: worker, scheduler and dashboard" \
      org.opencontainers.image.licenses="MIT"
RUN groupadd --system --gid 10001 bananas \
 && useradd --system --uid 10001 --gid bananas --home-dir /app --no-create-home \
      --shell /usr/sbin/nologin bananas \
 && mkdir -p /app \
 && chown 10001:10001 /app
COPY --from=build /opt/bananas /opt/bananas
ENV PATH=/opt/bananas/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app \
    LOG_FORMAT=json \
    METRICS_PORT=8000
WORKDIR /app
USER 10001:10001
EXPOSE 8000
ENTRYPOINT ["bananas"]
CMD ["worker"]
