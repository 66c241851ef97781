# One image for the head (Ray head + `hpo serve`) and the workers (Ray nodes).
# CPU torch by default; build with --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128
# (or any CUDA wheel index) for GPU workers.
FROM python:3.11-slim

ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1

WORKDIR /app
RUN pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX}"
COPY pyproject.toml README.md ./
COPY api ./api
COPY service ./service
COPY search ./search
COPY workers ./workers
COPY storage ./storage
COPY examples ./examples
RUN pip install .

EXPOSE 8000 6379 8265
CMD ["hpo", "--help"]
