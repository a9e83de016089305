# GPU image of the RunPod serverless worker: python -m f5serve.runpod (docs/deploy-runpod.md).
#   docker build -t f5serve-runpod .
#   docker build --build-arg MODEL= -t f5serve-runpod .   # no model baked in (downloaded at start)
# deploy/compose.yaml builds it with EXTRAS=postgres,s3 for API replicas and workers
# (docs/deploy.md).
# The base image brings CUDA and PyTorch; f5serve needs torch>=2.2, so pip keeps that build.
FROM pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    F5SERVE_COMPILE=auto \
    HF_HOME=/app/hf-cache

WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
ARG EXTRAS=runpod,s3
RUN pip install ".[${EXTRAS}]"

# Bake the default model (and its vocoder) into the image, so a cold start does not download it.
ARG MODEL=f5tts-v1-base
RUN if [ -n "$MODEL" ]; then f5serve models pull "$MODEL"; fi

# Voices: <name>.wav + <name>.txt in /app/sample (F5SERVE_VOICES_DIR), from a derived image
# (COPY sample ./sample) or a network volume mounted there.
RUN mkdir -p /app/sample

CMD ["python", "-m", "f5serve.runpod"]
