# intercom-responder: the daemon in a container. See deploy/README.md.
#
#   docker build -t intercom-responder .
#   docker run -d --name intercom-responder --env-file .env --stop-timeout 90 \
#       -v intercom-responder-data:/data -p 127.0.0.1:8000:8000 intercom-responder
#
# Arguments after the image name go to main.py: `docker run --rm --env-file .env
# -v intercom-responder-data:/data intercom-responder check`.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A fixed, unprivileged uid/gid: a bind-mounted /data can be prepared with
# `chown 10001:10001`. Its home is /data, so nothing writes into the image.
RUN groupadd --system --gid 10001 responder \
    && useradd --system --uid 10001 --gid responder --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin responder \
    && mkdir /data \
    && chown responder:responder /data \
    && chmod 0700 /data

WORKDIR /app

# Dependencies in their own layer: a code change does not reinstall them.
COPY requirements.txt ./
RUN pip install --no-cache-dir --requirement requirements.txt

# The code stays owned by root: the daemon cannot change itself.
COPY main.py ./
COPY intercom_responder/ ./intercom_responder/

# All state in one volume: the state file (and its .lock, and sessions.sync.json of
# `sync`) and the local answer memory (qdrant/, mem0/). Do not set STATE_FILE or
# DATA_DIR in the --env-file: it would win over these and put the state outside /data.
ENV STATE_FILE=/data/sessions.json \
    DATA_DIR=/data \
    HEALTH_ADDR=0.0.0.0:8000
VOLUME /data

# Numeric, so `runAsNonRoot` checks (Kubernetes) and the host can tell it is not root.
USER 10001:10001

# GET /health and /metrics. Publish it on the host's loopback only (-p 127.0.0.1:8000:8000).
EXPOSE 8000

# Slim images have no curl: the stdlib does it. A 503 raises HTTPError, so any answer
# but 200 (or no answer) is a non-zero exit, i.e. unhealthy. With HEALTH_ADDR changed or
# empty, run the container with --no-healthcheck (or a matching --health-cmd).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=3).status == 200 else 1)"]

# The daemon handles SIGTERM itself (finishes in-flight work, saves the state, exits 0),
# and starts no child processes, so python as PID 1 needs neither tini nor --init.
# docker stop waits only 10 s before SIGKILL: run with --stop-timeout 90 (docker stop -t 90).
STOPSIGNAL SIGTERM
ENTRYPOINT ["python", "main.py"]
