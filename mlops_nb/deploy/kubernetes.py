"""Kubernetes files of a package (``export --kubernetes``): ``cronjob.yaml`` (the retraining job),
``serving.yaml`` (a Deployment and a Service running ``mlops-nb serve``) and the ``Dockerfile`` of
the image both run, built from the package's ``requirements.txt`` (mlops-nb's lean runtime: no Jupyter).

Both workloads run mlops-nb's verifying entry point on the package and the store at the paths they
had at export, mounted from the node (hostPath, default) or from a PersistentVolumeClaim the user
names. The store is SQLite: one node, one writer host, hence one serving replica, the ``Recreate``
strategy and ``concurrencyPolicy: Forbid``. Teams that share runs across hosts sync to MLflow instead.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from mlops_nb.errors import PackageError

#: The image the manifests name when the user gave none: invalid on purpose (upper case), so a pod
#: fails at once with InvalidImageName instead of pulling something unrelated.
PLACEHOLDER_IMAGE = "MLOPS-NB-IMAGE-PLACEHOLDER"
#: The port ``mlops-nb serve`` listens on inside the pod, and the Service's.
SERVE_PORT = 8080
#: Kubernetes object and volume-claim names: DNS-1123 (lower case, digits, '-', '.').
_CLAIM = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
#: The CronJob's container: exit 99 (champion kept) is a success for Kubernetes, every other
#: non-zero status fails the Job; the job's own last line says why, this one says what it meant.
_EXIT_WRAPPER = ('"$@"; code=$?; '
                 'if [ "$code" -eq 99 ]; then echo "mlops-nb: exit 99 (champion kept) ends the Job as a success"; '
                 'exit 0; fi; '
                 'if [ "$code" -ne 0 ]; then echo "mlops-nb: exit $code fails the Job (the line above says why)" >&2; '
                 'fi; exit "$code"')


@dataclass(frozen=True)
class Storage:
    """Where the pods find the package, the store and the data: hostPath folders of the node, or one
    PersistentVolumeClaim holding ``common`` (every folder's common parent) mounted at each folder."""

    folders: tuple[str, ...]
    claim: str | None = None

    @property
    def common(self) -> str:
        return os.path.commonpath(self.folders)


def check_image(image: str | None) -> None:
    """Refuse (:class:`PackageError`, exit 78) an image reference with a space or control character."""
    if image is not None and (not image.strip() or any(ch.isspace() or ord(ch) < 32 for ch in image)):
        raise PackageError(f"--image {image!r} is not an image reference; give one such as "
                           f"registry.example.com/churn-retrain:1 (no spaces)")


def check_claim(claim: str | None) -> None:
    """Refuse (:class:`PackageError`, exit 78) a volume-claim name Kubernetes would reject."""
    if claim is not None and not _CLAIM.fullmatch(claim):
        raise PackageError(f"--volume-claim {claim!r} is not a PersistentVolumeClaim name; use lower-case letters, "
                           f"digits, '-' and '.', starting and ending with a letter or digit (e.g. mlops-data)")


def storage(target: Path, store_path: str, data_source: str | None, claim: str | None) -> Storage:
    """The folders the pods need (the package root, the store's folder, a local data source's
    folder), without those inside another one."""
    wanted = [str(target), str(Path(store_path).parent)]
    if data_source and "://" not in data_source:
        wanted.append(_fixed_folder(data_source))
    kept = [f for f in dict.fromkeys(wanted)
            if not any(other != f and (f + os.sep).startswith(other.rstrip(os.sep) + os.sep) for other in wanted)]
    return Storage(tuple(kept), claim)


def _fixed_folder(source: str) -> str:
    """The deepest folder of ``source`` (a path or glob) with no wildcard in it."""
    parts = Path(source).parts
    fixed = [p for p in parts[: next((i for i, p in enumerate(parts) if any(c in p for c in "*?[")), len(parts))]]
    folder = Path(*fixed) if fixed else Path("/")
    return str(folder if len(fixed) < len(parts) else folder.parent)


def object_name(kind: str, model_name: str) -> str:
    """``mlops-nb-KIND-MODEL`` as a DNS-1035 label (a CronJob's name is at most 52 characters)."""
    name = re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", f"mlops-nb-{kind}-{model_name}".lower()))
    return name[:52].strip("-")


def _volumes(storage: Storage) -> tuple[str, str]:
    """The container's ``volumeMounts`` and the pod's ``volumes``, as YAML lists at column 0."""
    q = json.dumps
    mounts, volumes = [], []
    if storage.claim:
        volumes.append(f"- name: data\n  persistentVolumeClaim:\n    claimName: {q(storage.claim)}")
        for folder in storage.folders:
            sub = os.path.relpath(folder, storage.common)
            mounts.append(f"- name: data\n  mountPath: {q(folder)}" + ("" if sub == "." else f"\n  subPath: {q(sub)}"))
    else:
        for i, folder in enumerate(storage.folders):
            mounts.append(f"- name: data-{i}\n  mountPath: {q(folder)}")
            volumes.append(f"- name: data-{i}\n  hostPath:\n    path: {q(folder)}\n    type: Directory")
    return "\n".join(mounts), "\n".join(volumes)


def _storage_comment(storage: Storage) -> str:
    folders = ", ".join(storage.folders)
    if storage.claim:
        where = (f"# Storage: the PersistentVolumeClaim {storage.claim!r} holds the contents of {storage.common}\n"
                 f"# (the package, the store and the data below it), mounted at {folders}.\n")
    else:
        where = (f"# Storage: {folders} are mounted from the node (hostPath): run the pods on the node that has\n"
                 f"# them (add a nodeSelector), or export with --volume-claim NAME to mount a PersistentVolumeClaim.\n")
    return where + ("# The store is SQLite: one node, one writer host. Keep it on a local disk of one node (a\n"
                    "# ReadWriteOnce volume, not NFS), with one serving replica. Teams that share runs across\n"
                    "# hosts sync them to MLflow instead (README, \"Running it on Airflow / Kubernetes\").\n")


def _security(indent: str) -> str:
    """Run as the user who exported, so the versions the job writes belong to the package's owner."""
    return (f"{indent}securityContext:\n{indent}  runAsUser: {os.getuid()}\n{indent}  runAsGroup: {os.getgid()}\n")


def image_line(image: str | None, target: Path) -> str | None:
    """The one line export says when the manifests name the placeholder image (None when ``image``)."""
    if image:
        return None
    return (f"kubernetes: the manifests name the placeholder image {PLACEHOLDER_IMAGE}; build the image with "
            f"`docker build -t IMAGE {target}/current` (its Dockerfile installs requirements.txt) and export "
            f"again with --image IMAGE")


def cronjob_yaml(model_name: str, schedule: str, target: Path, store_path: str, data_source: str | None, *,
                 image: str | None = None, claim: str | None = None) -> str:
    """The CronJob retraining the package through ``python -P -m mlops_nb retrain ROOT``."""
    q = json.dumps
    args = ["python", "-P", "-m", "mlops_nb", "retrain", str(target),
            *(["--data", data_source] if data_source else [])]
    where = storage(target, store_path, data_source, claim)
    mounts, volumes = _volumes(where)
    return f"""# Kubernetes CronJob: retrain model {model_name} through mlops-nb's verifying entry point
# (generated by mlops-nb). Exit 99 (champion kept) ends the Job as a success; any other non-zero
# status fails it, after the job's one line saying why. Image: {_image_note(image, target)}
{_storage_comment(where)}apiVersion: batch/v1
kind: CronJob
metadata:
  name: {q(object_name("retrain", model_name))}
  labels:
    app.kubernetes.io/name: {q(object_name("retrain", model_name))}
    app.kubernetes.io/component: retrain
    app.kubernetes.io/managed-by: mlops-nb
spec:
  schedule: {q(schedule)}
  concurrencyPolicy: Forbid
  startingDeadlineSeconds: 3600
  successfulJobsHistoryLimit: 3
  failedJobsHistoryLimit: 3
  jobTemplate:
    spec:
      backoffLimit: 0
      template:
        metadata:
          labels:
            app.kubernetes.io/name: {q(object_name("retrain", model_name))}
            app.kubernetes.io/component: retrain
        spec:
          restartPolicy: Never
{_security(" " * 10)}          containers:
            - name: retrain
              image: {q(image or PLACEHOLDER_IMAGE)}
              workingDir: {q(str(target))}
              command: ["sh", "-c", {q(_EXIT_WRAPPER)}, "mlops-nb-retrain"]
              args: {q(args)}
              env:
                - name: MLOPS_NB_STORE
                  value: {q(store_path)}
              resources:
                requests:
                  cpu: "500m"
                  memory: "1Gi"
                limits:
                  memory: "4Gi"
              volumeMounts:
{_reindent(mounts, 16)}
          volumes:
{_reindent(volumes, 12)}
"""


def serving_yaml(model_name: str, target: Path, store_path: str, data_source: str | None, *,
                 image: str | None = None, claim: str | None = None) -> str:
    """A Deployment running ``mlops-nb serve ROOT`` (ready when ``GET /ping`` answers) and its Service."""
    q = json.dumps
    name = object_name("serve", model_name)
    args = ["python", "-P", "-m", "mlops_nb", "serve", str(target), "--host", "0.0.0.0", "--port", str(SERVE_PORT)]
    # the same folders as the CronJob's, so one claim has one layout for both
    where = storage(target, store_path, data_source, claim)
    mounts, volumes = _volumes(where)
    return f"""# Kubernetes Deployment and Service: serve model {model_name} with `mlops-nb serve` (generated by
# mlops-nb). The pod is ready when GET /ping answers; it follows the package's `current` when a
# retraining promotes or a rollback swaps. Image: {_image_note(image, target)}
{_storage_comment(where)}# One replica and the Recreate strategy: never two writers of the store at once.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {q(name)}
  labels:
    app.kubernetes.io/name: {q(name)}
    app.kubernetes.io/component: serve
    app.kubernetes.io/managed-by: mlops-nb
spec:
  replicas: 1
  strategy:
    type: Recreate
  selector:
    matchLabels:
      app.kubernetes.io/name: {q(name)}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: {q(name)}
        app.kubernetes.io/component: serve
    spec:
{_security(" " * 6)}      containers:
        - name: serve
          image: {q(image or PLACEHOLDER_IMAGE)}
          command: {q(args)}
          env:
            - name: MLOPS_NB_STORE
              value: {q(store_path)}
          ports:
            - name: http
              containerPort: {SERVE_PORT}
          readinessProbe:
            httpGet:
              path: /ping
              port: http
            periodSeconds: 5
          livenessProbe:
            httpGet:
              path: /ping
              port: http
            initialDelaySeconds: 30
            periodSeconds: 20
          resources:
            requests:
              cpu: "250m"
              memory: "512Mi"
            limits:
              memory: "2Gi"
          volumeMounts:
{_reindent(mounts, 12)}
      volumes:
{_reindent(volumes, 8)}
---
apiVersion: v1
kind: Service
metadata:
  name: {q(name)}
  labels:
    app.kubernetes.io/name: {q(name)}
    app.kubernetes.io/managed-by: mlops-nb
spec:
  selector:
    app.kubernetes.io/name: {q(name)}
  ports:
    - name: http
      port: {SERVE_PORT}
      targetPort: http
"""


def dockerfile(model_name: str, target: Path) -> str:
    """The image of both workloads: this Python's slim image plus requirements.txt (exact pins of
    the model's libraries and mlops-nb, whose core dependencies are the lean runtime: no Jupyter)."""
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    return f"""# The runtime image of model {model_name}'s package (generated by mlops-nb): Python {python} with the
# exact versions of requirements.txt, mlops-nb's retrain, predict and serve included, no Jupyter.
# Build it from this folder and give it to export:
#   docker build -t IMAGE {target}/current
#   mlops-nb export {model_name} --to {target} --kubernetes --image IMAGE
# mlops-nb comes from your package index; point pip elsewhere with
#   docker build --build-arg PIP_INDEX_URL=https://your.index/simple ...
# The package and the store are not copied in: the manifests mount them at their paths.
FROM python:{python}-slim
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY requirements.txt /opt/mlops-nb/requirements.txt
RUN python -m pip install -r /opt/mlops-nb/requirements.txt
CMD ["python", "-m", "mlops_nb", "--help"]
"""


def _image_note(image: str | None, target: Path) -> str:
    if image:
        return f"{image}."
    return (f"{PLACEHOLDER_IMAGE} is a placeholder:\n# build the image from the Dockerfile beside this file "
            f"(docker build -t IMAGE {target}/current) and export with --image IMAGE.")


def _reindent(block: str, spaces: int) -> str:
    return "\n".join(" " * spaces + line for line in block.splitlines())
