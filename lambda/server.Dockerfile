# syntax=docker/dockerfile:1
# The Scarab server image: lens.server (FastAPI on uvicorn) over the same code as the
# Lambda function, for SageMaker Serverless Inference and ECS Fargate (build context lambda/).
#
#   docker buildx build --platform linux/arm64 -f lambda/server.Dockerfile -t scarab-server lambda/
#   docker buildx build --platform linux/amd64 -f lambda/server.Dockerfile -t scarab-server lambda/
#   docker run -p 8080:8080 scarab-server serve
#
# The base image is multi-arch and nothing below is architecture specific: pip resolves
# the wheels (numpy, onnxruntime, pillow) for the platform being built.
ARG PYTHON_VERSION=3.12
FROM python:${PYTHON_VERSION}-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    EXECUTION_MODE=standalone
WORKDIR /opt/scarab

# Dependencies first: this layer only changes when the requirements do. requirements.txt
# includes every function's list (the server serves every route); requirements/server.txt
# adds FastAPI, uvicorn and boto3 (which the Lambda runtime would have shipped).
COPY requirements.txt /opt/scarab/
COPY requirements/ /opt/scarab/requirements/
RUN pip install --no-cache-dir --disable-pip-version-check \
        --requirement /opt/scarab/requirements.txt \
        --requirement /opt/scarab/requirements/server.txt \
    && rm -r /opt/scarab/requirements.txt /opt/scarab/requirements \
    && useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin scarab

# The code (and the small offline model files in lens/predict/artifacts/), compiled now:
# the non-root user cannot write bytecode next to it.
COPY lens/ /opt/scarab/lens/
RUN python -m compileall -q /opt/scarab/lens \
    && chmod 0755 /opt/scarab/lens/server/entrypoint.sh

USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=4)"]
ENTRYPOINT ["/opt/scarab/lens/server/entrypoint.sh"]
CMD ["serve"]
