"""JobSet's webhooks in the embedded server's admission path (``apiserver/hooks.py`` plugins).

A real cluster calls JobSet's webhook server (``mjobset.kb.io`` on CREATE, ``vjobset.kb.io`` on
CREATE and UPDATE of ``jobsets``, not its status); the embedded cluster has no such server, so
these plugins do the same work in process, in the same places: defaulting among the mutating
plugins (before the schema's validation), the CRD's CEL rules and then the webhook's validation
among the validating ones. A webhook refusal is worded as kube-apiserver words a denying
webhook's Status: ``admission webhook "vjobset.kb.io" denied the request: JobSet.jobset.x-k8s.io
"x" is invalid: ...`` (422, reason Invalid, the causes in details).
"""

from __future__ import annotations

from typing import Any

from kubetrain.base.jsoncopy import json_copy
from kubetrain.cluster.apiserver import errors
from kubetrain.cluster.apiserver.admission import denial
from kubetrain.cluster.apiserver.hooks import AdmissionRequest

from .constants import GROUP, KIND
from .defaults import default_jobset
from .validation import cel_causes, create_causes, update_causes

__all__ = ["MUTATING_WEBHOOK", "VALIDATING_WEBHOOK", "JobSetDefaulter", "JobSetValidator"]

MUTATING_WEBHOOK = "mjobset.kb.io"
VALIDATING_WEBHOOK = "vjobset.kb.io"


def _is_jobset(request: AdmissionRequest) -> bool:
    info = request.info
    return info.group == GROUP and info.plural == "jobsets" and not request.subresource


class JobSetDefaulter:
    mutating = True

    async def admit(self, request: AdmissionRequest) -> dict[str, Any] | None:
        if request.operation != "CREATE" or request.obj is None or not _is_jobset(request):
            return None
        obj = json_copy(request.obj)
        default_jobset(obj)
        return obj


class JobSetValidator:
    mutating = False

    async def admit(self, request: AdmissionRequest) -> dict[str, Any] | None:
        if request.operation not in ("CREATE", "UPDATE") or request.obj is None:
            return None
        if not _is_jobset(request):
            return None
        obj, old = request.obj, request.old_obj
        name = str(obj["metadata"].get("name") or "")
        cel = cel_causes(obj, old)
        if cel:
            raise errors.invalid(KIND, GROUP, name, cel)
        causes = create_causes(obj) if old is None else update_causes(old, obj)
        if causes:
            raise denial(VALIDATING_WEBHOOK, errors.invalid(KIND, GROUP, name, causes).to_status())
        return None
