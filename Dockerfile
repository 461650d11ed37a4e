# The bot, as `python -m bot`: Socket Mode when SLACK_APP_TOKEN is set, else HTTP on PORT.
# Either way PORT serves /healthz, /readyz and /metrics.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=3000

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt

RUN useradd --system --uid 10001 --user-group --no-create-home commander \
    && mkdir -p /app/data \
    && chown commander:commander /app/data
COPY bot ./bot
COPY commander ./commander
COPY handlers ./handlers

USER commander
EXPOSE 3000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-m", "bot.healthcheck", "/healthz"]
CMD ["python", "-m", "bot"]
