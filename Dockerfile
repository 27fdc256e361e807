# The safety-monitor image: the package with its rules and templates bundled.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY safety_monitor ./safety_monitor
COPY streams ./streams
COPY rules ./rules
COPY templates ./templates
RUN pip install --no-cache-dir . && useradd --create-home monitor
USER monitor
ENTRYPOINT []
CMD ["safety-monitor", "--help"]
