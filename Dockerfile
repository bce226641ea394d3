# One image for both control-plane processes (and the ready-made workers):
#   docker build -t sedna-py:0.1.0 .
#   GM: python -m gm     LC: python -m lc     (see crds/install/)
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/sedna
COPY . /opt/sedna
RUN pip install . \
    && groupadd --system --gid 10001 sedna \
    && useradd --system --uid 10001 --gid sedna --home-dir /var/lib/sedna --no-create-home sedna \
    && mkdir -p /var/lib/sedna \
    && chown sedna:sedna /var/lib/sedna

USER 10001:10001
WORKDIR /var/lib/sedna
EXPOSE 9000 9010 9100
CMD ["python", "-m", "gm"]
