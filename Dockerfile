# syntax=docker/dockerfile:1.7
# accelbench inference service, CPU only: `accelbench serve` (FastAPI + uvicorn, replicas, dynamic batching).
#
#   docker build -t accelbench .                                   # model mounted at run time (below)
#   docker build -t accelbench --build-arg MODEL_CACHE=model-cache .   # model baked in: model-cache/ holds a
#                                                                  # copy of ~/.cache/accelbench (the trained models)
#   docker run --rm -p 127.0.0.1:8000:8000 -v ~/.cache/accelbench:/cache:ro accelbench
#   (data/ of the build context, filled by `make data`, is copied in; else mount it: -v $PWD/data:/app/data:ro)
#   docker run --rm -p 127.0.0.1:8000:8000 accelbench serve --host 0.0.0.0 --port 8000 \
#       --task sst2 --model minilm-sst2 --method dynamic-int8 --replicas 2 --max-batch-size 8
#
# Pinned: the base image by tag (pin a digest with --build-arg PYTHON_IMAGE=python:3.11-slim@sha256:...),
# torch by version from the PyTorch CPU index (no multi-GB CUDA wheels), everything else by
# docker/constraints.txt (a `pip freeze` of the environment the tests passed in).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
FROM ${PYTHON_IMAGE}

ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
# Extras to install besides the service, e.g. "ray" for `accelbench serve --ray`.
ARG EXTRAS=""
# A folder of the build context holding trained models (a copy of ~/.cache/accelbench) to bake into the image;
# empty: mount one at /cache when running.
ARG MODEL_CACHE=""

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    ACCELBENCH_CACHE=/cache \
    ACCELBENCH_DATA_DIR=/app/data \
    ACCELBENCH_RESULTS_DIR=/tmp/results \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HF_DATASETS_OFFLINE=1 \
    TOKENIZERS_PARALLELISM=false

RUN groupadd --system --gid 10001 accelbench \
    && useradd --system --uid 10001 --gid accelbench --home-dir /home/accelbench --create-home accelbench \
    && python -m venv "$VIRTUAL_ENV" \
    && mkdir -p /cache /app/data \
    && chown accelbench:accelbench /cache

WORKDIR /app
COPY docker/constraints.txt /tmp/constraints.txt
RUN pip install --index-url "$TORCH_INDEX" "torch==${TORCH_VERSION}"

COPY pyproject.toml README.md ./
COPY accelbench ./accelbench
COPY notebooks ./notebooks
RUN pip install --constraint /tmp/constraints.txt ".${EXTRAS:+[$EXTRAS]}" \
    && python -c "import accelbench, fastapi, uvicorn, torch; print('torch', torch.__version__)"

# The tasks' data (`make data` fills data/): replicas warm up on texts of the evaluation split. Optional, like
# the baked-in models: a build context without them still builds, and /app/data or /cache can be mounted.
RUN --mount=type=bind,target=/ctx \
    if [ -d /ctx/data ]; then cp -r /ctx/data/. /app/data/ && rm -f /app/data/prepare.py; fi \
    && if [ -n "$MODEL_CACHE" ]; then cp -r "/ctx/$MODEL_CACHE/." /cache/; fi \
    && chown -R accelbench:accelbench /cache

USER 10001:10001
EXPOSE 8000
VOLUME ["/cache"]

HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4).status != 200)"]

# SIGTERM lets in-flight requests finish (the server drains), so `docker stop` is graceful.
STOPSIGNAL SIGTERM
ENTRYPOINT ["accelbench"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000", "--task", "sst2", "--model", "minilm-sst2", "--method", "fp32"]
