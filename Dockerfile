# One image for every service; the compose file picks the module to run.
FROM python:3.11-slim AS base
ENV PYTHONUNBUFFERED=1 UV_LINK_MODE=copy UV_COMPILE_BYTECODE=1
RUN pip install --no-cache-dir uv
WORKDIR /app
COPY pyproject.toml uv.lock ./
COPY libs ./libs
COPY services ./services
RUN uv sync --frozen --no-dev && useradd --system --uid 10001 videoimport
USER videoimport
ENV PATH=/app/.venv/bin:$PATH
EXPOSE 8000 9100
CMD ["python", "-m", "videoimport_api"]
