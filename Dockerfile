# One image for the control plane, the ready-made workers and the storage initializer:
#   docker build -t sedna-py:0.1.0 .
#   GM: python -m gm   LC: python -m lc   storage initializer: python -m workers.storage
# crds/install/ and the examples use exactly this name and tag (docs/kubernetes.md).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/sedna
COPY . /opt/sedna
RUN pip install ".[s3]" \
    && groupadd --system --gid 10001 sedna \
    && useradd --system --uid 10001 --gid sedna --home-dir /var/lib/sedna --no-create-home sedna \
    && mkdir -p /var/lib/sedna \
    && chown sedna:sedna /var/lib/sedna

USER 10001:10001
WORKDIR /var/lib/sedna
EXPOSE 9000 9010 9011 9100
CMD ["python", "-m", "gm"]
