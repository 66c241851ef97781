# One Dockerfile for the head (Ray head + `hpo serve`) and the workers (Ray nodes); the
# torch build is an argument. docker-compose.yml builds the head with CPU torch and the
# workers with CUDA torch:
#   docker build -t hpo-service:cpu .                                # CPU torch (default)
#   docker build --build-arg TORCH_VARIANT=cu128 -t hpo-service:gpu .  # CUDA 12.8 torch
# TORCH_VARIANT names a wheel index of https://download.pytorch.org/whl/ (cpu, cu126,
# cu128, cu130, ...): pick a CUDA version no newer than the hosts' driver supports
# (`nvidia-smi` prints it). The wheels bring their CUDA libraries; the host brings the
# driver (NVIDIA Container Toolkit).
FROM python:3.11-slim

ARG TORCH_VERSION=2.13.0
ARG TORCH_VARIANT=cpu
ARG TORCH_INDEX=https://download.pytorch.org/whl/${TORCH_VARIANT}
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1

WORKDIR /app
# `compile: true` trials build kernels at run time: Triton's launcher (CUDA) and Inductor's
# CPU kernels need a C/C++ compiler.
RUN apt-get update && apt-get install -y --no-install-recommends gcc g++ libc6-dev \
    && rm -rf /var/lib/apt/lists/*
RUN pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX}"
# A GPU image with a CPU build of torch would train nothing on its GPUs (its slots refuse
# to): fail the build instead.
RUN python -c "import sys, torch; cuda = torch.version.cuda; \
sys.exit(0 if (cuda is None) == ('${TORCH_VARIANT}' == 'cpu') else \
f'TORCH_VARIANT=${TORCH_VARIANT} installed torch {torch.__version__} (CUDA {cuda})')"
COPY pyproject.toml README.md ./
COPY api ./api
COPY service ./service
COPY search ./search
COPY workers ./workers
COPY storage ./storage
COPY examples ./examples
RUN pip install .

# Only the API: Ray's ports (6379, 8265, 10001) serve the cluster's own network.
EXPOSE 8000
CMD ["hpo", "--help"]
