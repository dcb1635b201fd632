# Slim image running `secondlook serve` as a non-root user.
#   docker build -t secondlook .
#   docker run -p 8000:8000 -e SECONDLOOK_ENVIRONMENT=production -e SECONDLOOK_SECRET_KEY=... \
#     -e SECONDLOOK_PUBLIC_URL=https://secondlook.example.org -e SECONDLOOK_EHR_CONFIG=/config/ehrs.toml \
#     -e SECONDLOOK_DATABASE_URL=postgresql+psycopg://... -v $PWD/config:/config:ro secondlook
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY smartapp ./smartapp
COPY launch ./launch
COPY fhirmaps ./fhirmaps
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# Pango and a font for WeasyPrint (referral-packet PDFs).
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/*
RUN useradd --create-home --uid 10001 secondlook
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER secondlook
WORKDIR /home/secondlook
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"
CMD ["secondlook", "serve", "--host", "0.0.0.0", "--port", "8000"]
