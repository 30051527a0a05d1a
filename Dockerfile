# kubetrain's operator image: the wheel CI tests, on a slim Python, run as a non-root user.
#
#   docker build -t ghcr.io/kubetrain/kubetrain:0.1.0 .
#
# The build stage makes the wheel; the runtime stage installs only it (pip's cache and the
# build tools stay behind). The operator writes only under /tmp (certificate files it loads),
# which deploy/base/deployment.yaml mounts as an emptyDir under a read-only root file system.

FROM python:3.11-slim AS build
WORKDIR /src
COPY . .
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl \
    && rm -rf /wheels \
    && python -m pip uninstall -y pip setuptools wheel
USER 65532:65532
ENTRYPOINT ["kubetrain"]
CMD ["operator"]
