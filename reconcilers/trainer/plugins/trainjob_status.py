"""Trainer's ``TrainJobStatus`` plugin (KEP-2779): how a trainer reaches the status server.

Why: a training script reports progress (``status.trainerStatus``) by POSTing to the operator
(``reconcilers/trainer/status_server.py``), which it must find, trust and authenticate to. As
Trainer v2.3.0's ``pkg/runtime/framework/plugins/trainjobstatus`` does, every container of the
trainer job (the replicatedJob labelled ``trainjob-ancestor-step: trainer``) gets

- ``KUBEFLOW_TRAINER_SERVER_URL``: ``https://<service>.<namespace>.svc:<port>`` + the TrainJob's
  status path;
- ``KUBEFLOW_TRAINER_SERVER_CA_CERT`` and ``KUBEFLOW_TRAINER_SERVER_TOKEN``: files under
  ``/var/run/secrets/kubeflow/trainer``, mounted read-only from the projected volume
  ``kubeflow-trainer-token``: a service-account token for the per-TrainJob audience
  (``trainer.kubeflow.org/v1alpha1/namespaces/<ns>/trainjobs/<name>/status``, 3600 s) and the
  ``ca.crt`` of the ConfigMap ``<trainjob>-tls-config``;

and the ConfigMap ``<trainjob>-tls-config`` (key ``ca.crt``: the CA bundle of the operator's
serving certificate) is applied beside the JobSet. The SDK's ``update_trainjob_status`` reads
exactly these three variables.

Unlike the other plugins this one needs the operator's settings (where the server is, which CA
signs it), so it is not a registered ``SideObjectBuilder``: ``objects.build_objects`` calls
``inject`` and ``tls_config_map`` when it is given ``StatusServerSettings`` (it also gives the
ConfigMap its metadata: this module does not import ``objects``, which imports it). It stays pure: the CA bundle is read by the
operator (``StatusServerSource``) before the build, not here.

Differences from Trainer v2.3.0: kubetrain labels the ConfigMap ``TRAINJOB_NAME_LABEL`` like its
other side objects; the URL's port is the webhook Service's (the server is a route on the
webhook server, see ``status_server.py``), not a port of its own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from kubetrain.base.jsoncopy import json_copy
from kubetrain.base.objects import Obj

from ..jobset_build import ANCESTOR_LABEL, ANCESTOR_TRAINER, BuildError

__all__ = [
    "CA_CERT_ENV",
    "CA_CERT_KEY",
    "MOUNT_PATH",
    "SERVER_URL_ENV",
    "TOKEN_ENV",
    "TOKEN_EXPIRATION_SECONDS",
    "TOKEN_VOLUME",
    "StatusServerSettings",
    "StatusServerSource",
    "StatusServerUnavailable",
    "inject",
    "status_path",
    "tls_config_map",
    "tls_config_map_name",
    "token_audience",
]

SERVER_URL_ENV = "KUBEFLOW_TRAINER_SERVER_URL"
CA_CERT_ENV = "KUBEFLOW_TRAINER_SERVER_CA_CERT"
TOKEN_ENV = "KUBEFLOW_TRAINER_SERVER_TOKEN"
MOUNT_PATH = "/var/run/secrets/kubeflow/trainer"
TOKEN_VOLUME = "kubeflow-trainer-token"
TOKEN_FILE = "token"
CA_CERT_KEY = "ca.crt"
TOKEN_EXPIRATION_SECONDS = 3600


def status_path(namespace: str, name: str) -> str:
    """The status server's path for a TrainJob (Trainer's ``statusserver.StatusUrl``)."""
    return f"/apis/trainer.kubeflow.org/v1alpha1/namespaces/{namespace}/trainjobs/{name}/status"


def token_audience(namespace: str, name: str) -> str:
    """The audience a TrainJob's token is for (Trainer's ``statusserver.TokenAudience``): a
    token of one TrainJob is refused for another."""
    return f"trainer.kubeflow.org/v1alpha1/namespaces/{namespace}/trainjobs/{name}/status"


def tls_config_map_name(trainjob_name: str) -> str:
    return f"{trainjob_name}-tls-config"


class StatusServerUnavailable(BuildError):
    """The CA bundle of the status server cannot be read yet (the certificate Secret is not
    written, or ``ca.crt`` is missing from ``--webhook-cert-dir``): the build is retried."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusServerSettings:
    """What the injection needs: where the server is and the CA bundle (PEM) that verifies it."""

    service_name: str
    namespace: str
    port: int
    ca_bundle: str

    def url(self, trainjob_namespace: str, trainjob_name: str) -> str:
        host = f"https://{self.service_name}.{self.namespace}.svc:{self.port}"
        return host + status_path(trainjob_namespace, trainjob_name)


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusServerSource:
    """The operator's side: the fixed settings and how to read the CA bundle now (it rotates).
    ``ca_bundle`` raises ``StatusServerUnavailable`` when there is none yet."""

    service_name: str
    namespace: str
    port: int
    ca_bundle: Callable[[], Awaitable[str]]

    async def settings(self) -> StatusServerSettings:
        return StatusServerSettings(
            service_name=self.service_name,
            namespace=self.namespace,
            port=self.port,
            ca_bundle=await self.ca_bundle(),
        )


def inject(trainjob: Obj, jobset: Obj, settings: StatusServerSettings) -> None:
    """Add the env, mount and volume to every container of ``jobset``'s trainer job, in place
    (``jobset`` is the build's own new dict; ``trainjob`` is not changed)."""
    meta = trainjob.get("metadata") or {}
    ns, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
    env = [
        {"name": SERVER_URL_ENV, "value": settings.url(ns, name)},
        {"name": CA_CERT_ENV, "value": f"{MOUNT_PATH}/{CA_CERT_KEY}"},
        {"name": TOKEN_ENV, "value": f"{MOUNT_PATH}/{TOKEN_FILE}"},
    ]
    mount = {"name": TOKEN_VOLUME, "mountPath": MOUNT_PATH, "readOnly": True}
    volume = {
        "name": TOKEN_VOLUME,
        "projected": {
            "sources": [
                {
                    "serviceAccountToken": {
                        "audience": token_audience(ns, name),
                        "expirationSeconds": TOKEN_EXPIRATION_SECONDS,
                        "path": TOKEN_FILE,
                    }
                },
                {
                    "configMap": {
                        "name": tls_config_map_name(name),
                        "items": [{"key": CA_CERT_KEY, "path": CA_CERT_KEY}],
                    }
                },
            ]
        },
    }
    for rjob in (jobset.get("spec") or {}).get("replicatedJobs") or []:
        labels = ((rjob.get("template") or {}).get("metadata") or {}).get("labels") or {}
        if labels.get(ANCESTOR_LABEL) != ANCESTOR_TRAINER:
            continue
        pod_spec = rjob["template"].setdefault("spec", {}).setdefault("template", {})
        pod_spec = pod_spec.setdefault("spec", {})
        for container in pod_spec.get("containers") or []:
            _upsert(container.setdefault("env", []), env)
            _upsert(container.setdefault("volumeMounts", []), [mount])
        _upsert(pod_spec.setdefault("volumes", []), [volume])
        break  # Trainer's FindPodSetByAncestor: the first trainer job


def tls_config_map(settings: StatusServerSettings, metadata: Obj) -> Obj:
    """The ConfigMap ``<trainjob>-tls-config`` (``metadata``: its name, namespace, owner
    reference and label) holding the CA bundle as ``ca.crt``."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata,
        "data": {CA_CERT_KEY: settings.ca_bundle},
    }


def _upsert(items: list[Obj], new: list[Obj]) -> None:
    """Go's ``apply.Upsert*``: an entry of the same name is replaced in place, else appended."""
    for item in new:
        for i, existing in enumerate(items):
            if existing.get("name") == item.get("name"):
                items[i] = json_copy(item)
                break
        else:
            items.append(json_copy(item))
