# Baromètre — production image: slim Python 3.11, non-root, uvicorn workers, health check.
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/venv PATH=/opt/venv/bin:$PATH
RUN pip install --no-cache-dir uv \
 && useradd --create-home --uid 10001 barometre
WORKDIR /srv/barometre
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY app ./app
COPY surveys ./surveys
COPY scoring ./scoring
COPY migrations ./migrations
COPY static ./static
COPY alembic.ini ./
RUN uv sync --frozen --no-dev && mkdir -p /srv/barometre/var && chown -R barometre /srv/barometre/var
USER barometre
ENV BAROMETRE_ENVIRONMENT=production BAROMETRE_WORKERS=4
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"
# Run `barometre db upgrade` once per release (a job), then start the web workers.
CMD ["barometre", "serve", "--host", "0.0.0.0", "--port", "8000"]
