# The callstream services (ingress and worker) for users who have Docker.
# docker-compose.yml runs the pinned apache/kafka image beside them.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY callstream ./callstream
COPY ingest ./ingest
COPY processors ./processors
COPY schemas ./schemas
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 callstream
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
ENV CALLSTREAM_DATA_DIR=/home/callstream/data
# The worker's tables live here. It exists, owned by the service user, before compose mounts a
# volume on it: a new volume takes the directory's owner, and the user is not root.
RUN mkdir -p "$CALLSTREAM_DATA_DIR" && chown callstream:callstream "$CALLSTREAM_DATA_DIR"
VOLUME ["/home/callstream/data"]
USER callstream
WORKDIR /home/callstream
ENTRYPOINT ["callstream"]
CMD ["--help"]
