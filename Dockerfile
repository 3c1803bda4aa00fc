# CRP Gateway container. Migrations run at start-up under an advisory lock, so
# several replicas can start at once.
FROM python:3.13-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PORT=8100
WORKDIR /app
COPY pyproject.toml README.md main.py ./
COPY crp_gateway ./crp_gateway
RUN pip install . && useradd --system --home /app gateway && chown gateway /app
USER gateway
EXPOSE 8100
CMD ["crp-gateway", "serve"]
