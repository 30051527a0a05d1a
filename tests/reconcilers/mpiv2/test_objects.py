"""The MPIJob v2beta1 children, field by field as mpi-operator v0.8.2 builds them.

Expected objects come from the Go tests (``TestNewLauncherAndWorker``, ``TestNewConfigMap``,
``TestUpdateDiscoverHostsInConfigMap``) where they exist, otherwise from the Go builders.
"""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from kubetrain.base.objects import Obj
from kubetrain.reconcilers.mpiv2 import objects as mpi

from .mpijobs import UID, launcher_job, mpijob, pod

OWNER = {
    "apiVersion": "kubeflow.org/v2beta1",
    "kind": "MPIJob",
    "name": "foo",
    "uid": UID,
    "controller": True,
    "blockOwnerDeletion": True,
}

SSH_ITEMS = [
    {"key": "ssh-privatekey", "path": "id_rsa"},
    {"key": "ssh-publickey", "path": "id_rsa.pub"},
    {"key": "ssh-publickey", "path": "authorized_keys"},
]
CONFIG_ITEMS = [
    {"key": "hostfile", "path": "hostfile", "mode": 0o444},
    {"key": "discover_hosts.sh", "path": "discover_hosts.sh", "mode": 0o555},
]
LAUNCHER_ENV = [{"name": "K_MPI_JOB_ROLE", "value": "launcher"}]
WORKER_ENV = [{"name": "K_MPI_JOB_ROLE", "value": "worker"}]
OMPI_ENV = [
    {"name": "OMPI_MCA_orte_keep_fqdn_hostnames", "value": "true"},
    {"name": "OMPI_MCA_orte_default_hostfile", "value": "/etc/mpi/hostfile"},
    {"name": "OMPI_MCA_plm_rsh_args", "value": "-o ConnectionAttempts=10"},
]
INTEL_ENV = [
    {"name": "I_MPI_HYDRA_HOST_FILE", "value": "/etc/mpi/hostfile"},
    {"name": "I_MPI_HYDRA_BOOTSTRAP_EXEC_EXTRA_ARGS", "value": "-o ConnectionAttempts=10"},
]
MPICH_ENV = [
    {"name": "HYDRA_HOST_FILE", "value": "/etc/mpi/hostfile"},
    {"name": "HYDRA_LAUNCH_EXTRA_ARGS", "value": "-o ConnectionAttempts=10"},
]
NVIDIA_ENV = [{"name": "NVIDIA_VISIBLE_DEVICES"}, {"name": "NVIDIA_DRIVER_CAPABILITIES"}]


def ssh_volume(secret: str, *, mode: bool = True) -> dict[str, Any]:
    source: dict[str, Any] = {"secretName": secret, "items": SSH_ITEMS}
    if mode:
        source["defaultMode"] = 0o600
    return {"name": "ssh-auth", "secret": source}


def config_volume(name: str) -> dict[str, Any]:
    return {"name": "mpi-job-config", "configMap": {"name": name, "items": CONFIG_ITEMS}}


# -- names, labels, owner -------------------------------------------------------------------------


def test_constants_match_go() -> None:
    assert mpi.OPERATOR_NAME == "mpi-operator"
    assert (mpi.LAUNCHER_SUFFIX, mpi.WORKER_SUFFIX) == ("-launcher", "-worker")
    assert (mpi.CONFIG_SUFFIX, mpi.SSH_AUTH_SUFFIX) == ("-config", "-ssh")
    assert (mpi.CONFIG_VOLUME, mpi.CONFIG_MOUNT_PATH) == ("mpi-job-config", "/etc/mpi")
    assert (mpi.HOSTFILE_KEY, mpi.DISCOVER_HOSTS_KEY) == ("hostfile", "discover_hosts.sh")
    assert mpi.OPERATOR_NAME_LABEL == "training.kubeflow.org/operator-name"
    assert mpi.JOB_NAME_LABEL == "training.kubeflow.org/job-name"
    assert mpi.JOB_ROLE_LABEL == "training.kubeflow.org/job-role"
    assert mpi.REPLICA_TYPE_LABEL == "training.kubeflow.org/replica-type"
    assert mpi.REPLICA_INDEX_LABEL == "training.kubeflow.org/replica-index"


def test_owner_reference_names_v2beta1_even_for_a_v1_stored_job() -> None:
    job = mpijob()
    assert job["apiVersion"] == "kubeflow.org/v1"
    assert mpi.owner_reference(job) == OWNER


def test_names() -> None:
    job = mpijob()
    assert mpi.worker_name(job, 3) == "foo-worker-3"
    assert mpi.launcher_name(job) == "foo-launcher"
    assert mpi.config_map_name(job) == "foo-config"
    assert mpi.ssh_secret_name(job) == "foo-ssh"
    assert mpi.service_name(job) == "foo"


def test_default_labels_and_worker_selector() -> None:
    assert mpi.default_labels("foo", "launcher") == {
        "training.kubeflow.org/operator-name": "mpi-operator",
        "training.kubeflow.org/job-name": "foo",
        "training.kubeflow.org/job-role": "launcher",
    }
    assert mpi.worker_selector("foo") == {
        "training.kubeflow.org/operator-name": "mpi-operator",
        "training.kubeflow.org/job-name": "foo",
        "training.kubeflow.org/job-role": "worker",
    }


def test_worker_replicas() -> None:
    assert mpi.worker_replicas(mpijob(workers=5)) == 5
    assert mpi.worker_replicas(mpijob(workers=None)) == 0
    job = mpijob(workers=2)
    del job["spec"]["mpiReplicaSpecs"]["Worker"]["replicas"]
    assert mpi.worker_replicas(job) == 0


# -- ConfigMap ------------------------------------------------------------------------------------

NEW_CONFIG_MAP_CASES: dict[str, tuple[dict[str, Any], int, str, str]] = {
    "OpenMPI without slots, enable launcher as worker": (
        {"name": "openmpi-without-slots", "namespace": "tenant-a", "runLauncherAsWorker": True},
        2,
        "",
        "openmpi-without-slots-launcher.openmpi-without-slots.tenant-a.svc slots=1\n"
        "openmpi-without-slots-worker-0.openmpi-without-slots.tenant-a.svc slots=1\n"
        "openmpi-without-slots-worker-1.openmpi-without-slots.tenant-a.svc slots=1\n",
    ),
    "OpenMPI with cluster domain, enable launcher as worker": (
        {"name": "openmpi-without-slots", "namespace": "tenant-a", "runLauncherAsWorker": True},
        2,
        "cluster.local",
        "openmpi-without-slots-launcher.openmpi-without-slots.tenant-a.svc.cluster.local slots=1\n"
        "openmpi-without-slots-worker-0.openmpi-without-slots.tenant-a.svc.cluster.local slots=1\n"
        "openmpi-without-slots-worker-1.openmpi-without-slots.tenant-a.svc.cluster.local slots=1\n",
    ),
    "OpenMPI without slots, zero explicit workers": (
        {"name": "openmpi-without-slots", "namespace": "tenant-a", "runLauncherAsWorker": True},
        0,
        "",
        "openmpi-without-slots-launcher.openmpi-without-slots.tenant-a.svc slots=1\n",
    ),
    "OpenMPI without slots, disable launcher as worker": (
        {"name": "openmpi-without-slots", "namespace": "tenant-a"},
        2,
        "",
        "openmpi-without-slots-worker-0.openmpi-without-slots.tenant-a.svc slots=1\n"
        "openmpi-without-slots-worker-1.openmpi-without-slots.tenant-a.svc slots=1\n",
    ),
    "OpenMPI with slots": (
        {"name": "openmpi-with-slots", "namespace": "tenant-a", "slotsPerWorker": 10},
        1,
        "",
        "openmpi-with-slots-worker-0.openmpi-with-slots.tenant-a.svc slots=10\n",
    ),
    "OpenMPI with cluster domain": (
        {"name": "openmpi-with-slots", "namespace": "tenant-a"},
        1,
        "cluster.local",
        "openmpi-with-slots-worker-0.openmpi-with-slots.tenant-a.svc.cluster.local slots=1\n",
    ),
    "IntelMPI with slots": (
        {
            "name": "intelmpi-with-slots",
            "namespace": "project-x",
            "slotsPerWorker": 10,
            "mpiImplementation": "Intel",
        },
        1,
        "",
        "intelmpi-with-slots-worker-0.intelmpi-with-slots.project-x.svc:10\n",
    ),
    "IntelMPI with cluster domain": (
        {"name": "intelmpi-with-slots", "namespace": "project-x", "mpiImplementation": "Intel"},
        1,
        "cluster.local",
        "intelmpi-with-slots-worker-0.intelmpi-with-slots.project-x.svc.cluster.local:1\n",
    ),
    "MPICH with slots": (
        {
            "name": "mpich-with-slots",
            "namespace": "project-x",
            "slotsPerWorker": 10,
            "mpiImplementation": "MPICH",
        },
        1,
        "",
        "mpich-with-slots-worker-0.mpich-with-slots.project-x.svc:10\n",
    ),
    "MPICH with cluster domain": (
        {"name": "mpich-with-slots", "namespace": "project-x", "mpiImplementation": "MPICH"},
        1,
        "cluster.local",
        "mpich-with-slots-worker-0.mpich-with-slots.project-x.svc.cluster.local:1\n",
    ),
    "Intel with launcher as worker": (
        {
            "name": "j",
            "namespace": "n",
            "slotsPerWorker": 2,
            "mpiImplementation": "Intel",
            "runLauncherAsWorker": True,
        },
        1,
        "",
        "j-launcher.j.n.svc:2\nj-worker-0.j.n.svc:2\n",
    ),
}


@pytest.mark.parametrize("case", sorted(NEW_CONFIG_MAP_CASES))
def test_new_config_map(case: str) -> None:
    fields, replicas, domain, hostfile = NEW_CONFIG_MAP_CASES[case]
    fields = dict(fields)
    job = mpijob(fields.pop("name"), fields.pop("namespace"), **fields)
    cm = mpi.new_config_map(job, replicas, cluster_domain=domain)
    name = job["metadata"]["name"]
    assert cm == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": f"{name}-config",
            "namespace": job["metadata"]["namespace"],
            "labels": {"app": name},
            "ownerReferences": [{**OWNER, "name": name}],
        },
        "data": {"hostfile": hostfile},
    }


def test_new_config_map_slots_default_to_one_when_unset() -> None:
    job = mpijob(workers=1)
    del job["spec"]["slotsPerWorker"]
    assert mpi.new_config_map(job, 1)["data"]["hostfile"] == "foo-worker-0.foo.bar.svc slots=1\n"


def test_new_config_map_of_an_unknown_implementation_is_empty() -> None:
    job = mpijob(workers=2, mpiImplementation="Other")
    assert mpi.new_config_map(job, 2)["data"] == {"hostfile": ""}


def _named(*names: str, namespace: str = "default") -> list[Obj]:
    return [{"metadata": {"name": n, "namespace": namespace}} for n in names]


DISCOVER_CASES: dict[str, tuple[dict[str, Any], list[Obj], str, str]] = {
    "no cluster domain, launcher as worker disabled, no running pods": (
        {"name": "test-job", "namespace": "default"},
        [],
        "",
        "#!/bin/sh\n",
    ),
    "no cluster domain, launcher as worker disabled, with running pods": (
        {"name": "test-job", "namespace": "default"},
        _named("test-job-worker-0", "test-job-worker-1"),
        "",
        "#!/bin/sh\necho test-job-worker-0.test-job.default.svc\n"
        "echo test-job-worker-1.test-job.default.svc\n",
    ),
    "no cluster domain, launcher as worker enabled, no running pods": (
        {"name": "test-job", "namespace": "default", "runLauncherAsWorker": True},
        [],
        "",
        "#!/bin/sh\necho test-job-launcher.test-job.default.svc\n",
    ),
    "no cluster domain, launcher as worker enabled, with running pods": (
        {"name": "test-job", "namespace": "default", "runLauncherAsWorker": True},
        _named("test-job-worker-0", "test-job-worker-1"),
        "",
        "#!/bin/sh\necho test-job-launcher.test-job.default.svc\n"
        "echo test-job-worker-0.test-job.default.svc\n"
        "echo test-job-worker-1.test-job.default.svc\n",
    ),
    "with cluster domain, launcher as worker disabled, with running pods": (
        {"name": "test-job", "namespace": "tenant-a"},
        _named("test-job-worker-0", namespace="tenant-a"),
        "cluster.local",
        "#!/bin/sh\necho test-job-worker-0.test-job.tenant-a.svc.cluster.local\n",
    ),
    "with cluster domain, launcher as worker enabled, with running pods": (
        {"name": "test-job", "namespace": "tenant-a", "runLauncherAsWorker": True},
        _named("test-job-worker-0", namespace="tenant-a"),
        "cluster.local",
        "#!/bin/sh\necho test-job-launcher.test-job.tenant-a.svc.cluster.local\n"
        "echo test-job-worker-0.test-job.tenant-a.svc.cluster.local\n",
    ),
    "pods are sorted by name": (
        {"name": "test-job", "namespace": "default"},
        _named("test-job-worker-2", "test-job-worker-0", "test-job-worker-1"),
        "",
        "#!/bin/sh\necho test-job-worker-0.test-job.default.svc\n"
        "echo test-job-worker-1.test-job.default.svc\n"
        "echo test-job-worker-2.test-job.default.svc\n",
    ),
    "pods sort bytewise, worker-10 before worker-2": (
        {"name": "j", "namespace": "n"},
        _named("j-worker-2", "j-worker-10", namespace="n"),
        "",
        "#!/bin/sh\necho j-worker-10.j.n.svc\necho j-worker-2.j.n.svc\n",
    ),
}


@pytest.mark.parametrize("case", sorted(DISCOVER_CASES))
def test_with_discover_hosts(case: str) -> None:
    fields, running, domain, script = DISCOVER_CASES[case]
    fields = dict(fields)
    job = mpijob(fields.pop("name"), fields.pop("namespace"), **fields)
    cm = {"metadata": {"name": "x"}, "data": {"hostfile": "h\n"}}
    before_cm, before_pods = copy.deepcopy(cm), copy.deepcopy(running)
    out = mpi.with_discover_hosts(cm, job, running, cluster_domain=domain)
    assert out["data"] == {"hostfile": "h\n", "discover_hosts.sh": script}
    assert out["metadata"] == {"name": "x"}
    assert cm == before_cm and running == before_pods  # nothing mutated, order kept


def test_discover_hosts_uses_each_pods_namespace() -> None:
    job = mpijob("j", "n")
    script = mpi.discover_hosts_script(job, _named("j-worker-0", namespace="other"))
    assert script == "#!/bin/sh\necho j-worker-0.j.other.svc\n"


def test_desired_config_map_lists_only_running_workers() -> None:
    job = mpijob(workers=3)
    workers = [
        pod("foo-worker-1", phase="Running"),
        pod("foo-worker-0", phase="Pending"),
        pod("foo-worker-2", phase="Running"),
    ]
    cm = mpi.desired_config_map(job, workers, cluster_domain="cluster.local")
    assert cm["data"] == {
        "hostfile": "foo-worker-0.foo.bar.svc.cluster.local slots=1\n"
        "foo-worker-1.foo.bar.svc.cluster.local slots=1\n"
        "foo-worker-2.foo.bar.svc.cluster.local slots=1\n",
        "discover_hosts.sh": "#!/bin/sh\necho foo-worker-1.foo.bar.svc.cluster.local\n"
        "echo foo-worker-2.foo.bar.svc.cluster.local\n",
    }
    assert mpi.config_map_needs_update({"data": dict(cm["data"])}, cm) is False
    assert mpi.config_map_needs_update({"data": {"hostfile": ""}}, cm) is True
    assert mpi.config_map_needs_update({}, {"data": {}}) is False


# -- Service --------------------------------------------------------------------------------------


@pytest.mark.parametrize("as_worker", [False, True])
def test_new_service(as_worker: bool) -> None:
    svc = mpi.new_service(mpijob(runLauncherAsWorker=as_worker))
    spec: dict[str, Any] = {
        "clusterIP": "None",
        "selector": {
            "training.kubeflow.org/operator-name": "mpi-operator",
            "training.kubeflow.org/job-name": "foo",
        },
    }
    if as_worker:
        spec["publishNotReadyAddresses"] = True
    assert svc == {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "foo",
            "namespace": "bar",
            "labels": {"app": "foo"},
            "ownerReferences": [OWNER],
        },
        "spec": spec,
    }


def test_service_update() -> None:
    want = mpi.new_service(mpijob(runLauncherAsWorker=True))
    existing = mpi.new_service(mpijob())
    existing["spec"]["ports"] = [{"port": 22}]
    assert mpi.service_needs_update(existing, want)
    before = copy.deepcopy(existing)
    updated = mpi.with_service_update(existing, want)
    assert existing == before
    assert not mpi.service_needs_update(updated, want)
    assert updated["spec"]["ports"] == [{"port": 22}]
    back = mpi.with_service_update(updated, mpi.new_service(mpijob()))
    assert "publishNotReadyAddresses" not in back["spec"]
    # an explicit false is the same as absent
    explicit = copy.deepcopy(mpi.new_service(mpijob()))
    explicit["spec"]["publishNotReadyAddresses"] = False
    assert not mpi.service_needs_update(explicit, mpi.new_service(mpijob()))


# -- SSH Secret -----------------------------------------------------------------------------------


def test_new_ssh_auth_secret() -> None:
    secret = mpi.new_ssh_auth_secret(mpijob())
    assert secret["apiVersion"] == "v1" and secret["kind"] == "Secret"
    assert secret["metadata"] == {
        "name": "foo-ssh",
        "namespace": "bar",
        "labels": {"app": "foo"},
        "ownerReferences": [OWNER],
    }
    assert secret["type"] == "kubernetes.io/ssh-auth"
    assert sorted(secret["data"]) == ["ssh-privatekey", "ssh-publickey"]
    private_pem = base64.b64decode(secret["data"]["ssh-privatekey"], validate=True)
    public = base64.b64decode(secret["data"]["ssh-publickey"], validate=True)
    # SEC 1 PEM, as x509.MarshalECPrivateKey + pem.EncodeToMemory write it
    assert private_pem.startswith(b"-----BEGIN EC PRIVATE KEY-----\n")
    assert private_pem.endswith(b"-----END EC PRIVATE KEY-----\n")
    key = serialization.load_pem_private_key(private_pem, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert isinstance(key.curve, ec.SECP521R1)
    # the authorized_keys line of ssh.MarshalAuthorizedKey: type, base64, newline, no comment
    assert public.endswith(b"\n") and public.count(b"\n") == 1
    kind, blob = public.rstrip(b"\n").split(b" ")
    assert kind == b"ecdsa-sha2-nistp521"
    loaded = serialization.load_ssh_public_key(public.rstrip(b"\n"))
    assert isinstance(loaded, ec.EllipticCurvePublicKey)
    assert loaded.public_numbers() == key.public_key().public_numbers()
    assert base64.b64decode(blob)


def test_each_ssh_secret_has_a_fresh_key() -> None:
    a = mpi.new_ssh_auth_secret(mpijob())
    b = mpi.new_ssh_auth_secret(mpijob())
    assert a["data"]["ssh-privatekey"] != b["data"]["ssh-privatekey"]


def test_ssh_secret_keys_valid() -> None:
    secret = mpi.new_ssh_auth_secret(mpijob())
    assert mpi.ssh_secret_keys_valid(secret)
    assert mpi.ssh_secret_keys_valid({"data": {"ssh-publickey": "", "ssh-privatekey": ""}})
    assert not mpi.ssh_secret_keys_valid({"data": {"ssh-privatekey": "x"}})
    assert not mpi.ssh_secret_keys_valid({"data": {**secret["data"], "extra": "x"}})
    assert not mpi.ssh_secret_keys_valid({})
    fixed = mpi.with_new_ssh_keys({"metadata": {"name": "foo-ssh"}, "data": {"x": "y"}}, mpijob())
    assert mpi.ssh_secret_keys_valid(fixed) and fixed["metadata"] == {"name": "foo-ssh"}


# -- worker and launcher: TestNewLauncherAndWorker -----------------------------------------------


def test_defaults_case() -> None:
    job = mpijob("foo", "bar")
    launcher = mpi.new_launcher_job(job)
    assert launcher == {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": "foo-launcher",
            "namespace": "bar",
            "labels": {"app": "foo"},
            "ownerReferences": [OWNER],
        },
        "spec": {
            "podReplacementPolicy": "Failed",
            "template": {
                "metadata": {
                    "labels": {
                        "training.kubeflow.org/operator-name": "mpi-operator",
                        "training.kubeflow.org/job-name": "foo",
                        "training.kubeflow.org/job-role": "launcher",
                    },
                    "ownerReferences": [OWNER],
                },
                "spec": {
                    "hostname": "foo-launcher",
                    "subdomain": "foo",
                    "restartPolicy": "OnFailure",
                    "containers": [
                        {
                            "env": [
                                *LAUNCHER_ENV,
                                *OMPI_ENV,
                                {"name": "OMPI_MCA_orte_set_default_slots", "value": "1"},
                                *NVIDIA_ENV,
                            ],
                            "volumeMounts": [
                                {"name": "ssh-auth", "mountPath": "/root/.ssh"},
                                {"name": "mpi-job-config", "mountPath": "/etc/mpi"},
                            ],
                        }
                    ],
                    "volumes": [ssh_volume("foo-ssh"), config_volume("foo-config")],
                },
            },
        },
    }
    worker = mpi.new_worker(job, 0)
    assert worker == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "foo-worker-0",
            "namespace": "bar",
            "labels": {
                "training.kubeflow.org/operator-name": "mpi-operator",
                "training.kubeflow.org/job-name": "foo",
                "training.kubeflow.org/job-role": "worker",
                "training.kubeflow.org/replica-index": "0",
            },
            "ownerReferences": [OWNER],
        },
        "spec": {
            "hostname": "foo-worker-0",
            "subdomain": "foo",
            "dnsConfig": {"searches": ["foo.bar.svc.cluster.local"]},
            "restartPolicy": "Never",
            "containers": [
                {
                    "command": ["/usr/sbin/sshd", "-De"],
                    "volumeMounts": [{"name": "ssh-auth", "mountPath": "/root/.ssh"}],
                    "env": WORKER_ENV,
                }
            ],
            "volumes": [ssh_volume("foo-ssh")],
        },
    }


def test_launcher_as_worker_case() -> None:
    job = mpijob("foo", "bar", runLauncherAsWorker=True)
    template = mpi.new_launcher_job(job)["spec"]["template"]
    assert template["metadata"]["labels"] == {
        "training.kubeflow.org/operator-name": "mpi-operator",
        "training.kubeflow.org/job-name": "foo",
        "training.kubeflow.org/job-role": "launcher",
        "training.kubeflow.org/replica-index": "0",
    }
    container = template["spec"]["containers"][0]
    assert container["env"] == [
        *LAUNCHER_ENV,
        *OMPI_ENV,
        {"name": "OMPI_MCA_orte_set_default_slots", "value": "1"},
    ]
    assert template["spec"]["volumes"] == [ssh_volume("foo-ssh"), config_volume("foo-config")]
    worker = mpi.new_worker(job, 0)
    assert worker["metadata"]["labels"]["training.kubeflow.org/replica-index"] == "1"
    assert worker["spec"]["containers"][0]["env"] == WORKER_ENV


def overrides_job() -> Obj:
    return mpijob(
        "bar",
        "foo",
        sshAuthMountPath="/home/mpiuser/.ssh",
        slotsPerWorker=5,
        mpiImplementation="Intel",
        runPolicy={"ttlSecondsAfterFinished": 1, "activeDeadlineSeconds": 2, "backoffLimit": 3},
        launcher_template={
            "metadata": {"labels": {"foo": "bar"}},
            "spec": {
                "hostNetwork": True,
                "containers": [
                    {
                        "env": [{"name": "FOO", "value": "bar"}],
                        "securityContext": {"runAsUser": 1000},
                        "volumeMounts": [{"name": "fool-vol", "mountPath": "/mnt/foo"}],
                    },
                    {},
                ],
                "volumes": [{"name": "foo-vol"}],
            },
        },
        worker_template={
            "spec": {
                "hostNetwork": True,
                "containers": [
                    {"command": ["/entrypoint.sh"], "env": [{"name": "FOO", "value": "bar"}]}
                ],
            }
        },
    )


def test_overrides_case() -> None:
    job = overrides_job()
    owner = {**OWNER, "name": "bar"}
    before = copy.deepcopy(job)
    launcher = mpi.new_launcher_job(job)
    assert launcher["metadata"] == {
        "name": "bar-launcher",
        "namespace": "foo",
        "labels": {"app": "bar"},
        "ownerReferences": [owner],
    }
    assert launcher["spec"] == {
        "ttlSecondsAfterFinished": 1,
        "activeDeadlineSeconds": 2,
        "backoffLimit": 3,
        "podReplacementPolicy": "Failed",
        "template": {
            "metadata": {
                "labels": {
                    "foo": "bar",
                    "training.kubeflow.org/operator-name": "mpi-operator",
                    "training.kubeflow.org/job-name": "bar",
                    "training.kubeflow.org/job-role": "launcher",
                },
                "ownerReferences": [owner],
            },
            "spec": {
                "hostNetwork": True,
                "dnsPolicy": "ClusterFirstWithHostNet",
                "hostname": "bar-launcher",
                "subdomain": "bar",
                "restartPolicy": "OnFailure",
                "containers": [
                    {
                        "securityContext": {"runAsUser": 1000},
                        "env": [
                            {"name": "FOO", "value": "bar"},
                            *LAUNCHER_ENV,
                            *INTEL_ENV,
                            {"name": "I_MPI_PERHOST", "value": "5"},
                            *NVIDIA_ENV,
                        ],
                        "volumeMounts": [
                            {"name": "fool-vol", "mountPath": "/mnt/foo"},
                            {"name": "ssh-auth", "mountPath": "/home/mpiuser/.ssh"},
                            {"name": "mpi-job-config", "mountPath": "/etc/mpi"},
                        ],
                    },
                    {},
                ],
                "volumes": [
                    {"name": "foo-vol"},
                    ssh_volume("bar-ssh", mode=False),
                    config_volume("bar-config"),
                ],
            },
        },
    }
    worker = mpi.new_worker(job, 12)
    assert worker == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "bar-worker-12",
            "namespace": "foo",
            "labels": {
                "training.kubeflow.org/operator-name": "mpi-operator",
                "training.kubeflow.org/job-name": "bar",
                "training.kubeflow.org/job-role": "worker",
                "training.kubeflow.org/replica-index": "12",
            },
            "ownerReferences": [owner],
        },
        "spec": {
            "hostNetwork": True,
            "dnsPolicy": "ClusterFirstWithHostNet",
            "hostname": "bar-worker-12",
            "subdomain": "bar",
            "dnsConfig": {"searches": ["bar.foo.svc.cluster.local"]},
            "restartPolicy": "Never",
            "containers": [
                {
                    "command": ["/entrypoint.sh"],
                    "volumeMounts": [{"name": "ssh-auth", "mountPath": "/home/mpiuser/.ssh"}],
                    "env": [{"name": "FOO", "value": "bar"}, *WORKER_ENV],
                }
            ],
            "volumes": [ssh_volume("bar-ssh", mode=False)],
        },
    }
    assert job == before  # the cached job is never mutated


@pytest.mark.parametrize(
    ("implementation", "slots", "env"),
    [
        ("OpenMPI", 4, [*OMPI_ENV, {"name": "OMPI_MCA_orte_set_default_slots", "value": "4"}]),
        ("Intel", 4, [*INTEL_ENV, {"name": "I_MPI_PERHOST", "value": "4"}]),
        ("MPICH", 4, MPICH_ENV),
    ],
)
@pytest.mark.parametrize("as_worker", [False, True])
def test_launcher_env_per_implementation(
    implementation: str, slots: int, env: list[dict[str, Any]], as_worker: bool
) -> None:
    job = mpijob(
        mpiImplementation=implementation, slotsPerWorker=slots, runLauncherAsWorker=as_worker
    )
    got = mpi.new_launcher_pod_template(job)["spec"]["containers"][0]["env"]
    assert got == [*LAUNCHER_ENV, *env, *([] if as_worker else NVIDIA_ENV)]


def test_worker_keeps_template_labels_annotations_and_dns_searches() -> None:
    job = mpijob(
        workers=2,
        worker_template={
            "metadata": {
                "labels": {"team": "a", "training.kubeflow.org/job-role": "x"},
                "annotations": {"note": "y"},
            },
            "spec": {
                "dnsConfig": {"searches": ["a.example"], "nameservers": ["1.1.1.1"]},
                "restartPolicy": "Always",
                "containers": [{"args": ["run"]}],
                "volumes": [{"name": "data"}],
            },
        },
    )
    before = copy.deepcopy(job)
    worker = mpi.new_worker(job, 1)
    assert worker["metadata"]["labels"] == {
        "team": "a",
        "training.kubeflow.org/operator-name": "mpi-operator",
        "training.kubeflow.org/job-name": "foo",
        "training.kubeflow.org/job-role": "worker",
        "training.kubeflow.org/replica-index": "1",
    }
    assert worker["metadata"]["annotations"] == {"note": "y"}
    assert worker["spec"]["dnsConfig"] == {
        "searches": ["a.example", "foo.bar.svc.cluster.local"],
        "nameservers": ["1.1.1.1"],
    }
    # the replica's restartPolicy wins over the template's
    assert worker["spec"]["restartPolicy"] == "Never"
    # args without command: no default command
    assert "command" not in worker["spec"]["containers"][0]
    assert worker["spec"]["volumes"] == [{"name": "data"}, ssh_volume("foo-ssh")]
    assert job == before


def test_exit_code_restart_policy_becomes_never() -> None:
    job = mpijob(workers=1, worker_restart_policy="ExitCode", launcher_restart_policy="ExitCode")
    assert mpi.new_worker(job, 0)["spec"]["restartPolicy"] == "Never"
    assert mpi.new_launcher_pod_template(job)["spec"]["restartPolicy"] == "Never"


def test_launcher_template_annotations_are_kept() -> None:
    job = mpijob(
        launcher_template={
            "metadata": {"annotations": {"kueue.x-k8s.io/workload": "w"}},
            "spec": {"containers": [{}]},
        }
    )
    meta = mpi.new_launcher_pod_template(job)["metadata"]
    assert meta["annotations"] == {"kueue.x-k8s.io/workload": "w"}


def test_launcher_restart_policy_warning() -> None:
    assert mpi.launcher_restart_policy_warning(mpijob()) is None
    job = mpijob(launcher_template={"spec": {"restartPolicy": "Never", "containers": [{}]}})
    assert mpi.launcher_restart_policy_warning(job) == (
        "Warning",
        "SetPodTemplateRestartPolicy",
        "Restart policy in pod template overridden by restart policy in replica spec",
    )
    assert mpi.new_launcher_pod_template(job)["spec"]["restartPolicy"] == "OnFailure"


def test_launcher_job_suspend_follows_the_mpijob() -> None:
    assert "suspend" not in mpi.new_launcher_job(mpijob())["spec"]
    job = mpijob(runPolicy={"suspend": True})
    assert mpi.new_launcher_job(job)["spec"]["suspend"] is True
    job = mpijob(runPolicy={"suspend": False})
    assert "suspend" not in mpi.new_launcher_job(job)["spec"]


def test_a_template_without_containers_is_refused() -> None:
    job = mpijob(workers=1, worker_template={"spec": {"containers": []}})
    with pytest.raises(ValueError, match="no container"):
        mpi.new_worker(job, 0)
    with pytest.raises(ValueError, match="no Worker spec"):
        mpi.new_worker(mpijob(workers=None), 0)


def test_children_share_no_structure_with_the_job_or_each_other() -> None:
    job = mpijob(workers=2)
    a, b = mpi.new_worker(job, 0), mpi.new_worker(job, 1)
    a["spec"]["volumes"][0]["secret"]["items"].append({"key": "x"})
    a["spec"]["containers"][0]["env"].append({"name": "X"})
    assert b["spec"]["volumes"][0]["secret"]["items"] == SSH_ITEMS
    assert mpi.new_worker(job, 0)["spec"]["containers"][0]["env"] == WORKER_ENV
    assert job == mpijob(workers=2)


# -- resume: TestResumeMPIJobWithExistingLauncher --------------------------------------------------


def test_sync_launcher_scheduling_directives() -> None:
    job = mpijob(runPolicy={"suspend": True})
    launcher = mpi.new_launcher_job(job)
    launcher["spec"]["template"]["metadata"]["labels"]["stale"] = "kept"
    launcher["spec"]["template"]["spec"]["nodeSelector"] = {"old": "gone"}
    kueue = copy.deepcopy(job)
    tmpl = kueue["spec"]["mpiReplicaSpecs"]["Launcher"]["template"]
    tmpl["spec"]["nodeSelector"] = {"foo": "bar"}
    tmpl["spec"]["tolerations"] = [
        {"key": "gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}
    ]
    tmpl["spec"]["schedulingGates"] = [{"name": "kueue.x-k8s.io/topology"}]
    tmpl.setdefault("metadata", {})["annotations"] = {"kueue.x-k8s.io/workload": "my-workload"}
    desired = mpi.new_launcher_pod_template(kueue)
    before = copy.deepcopy(launcher)
    synced = mpi.sync_launcher_scheduling_directives(launcher, desired)
    assert launcher == before
    t = synced["spec"]["template"]
    assert t["spec"]["nodeSelector"] == {"foo": "bar"}
    assert t["spec"]["tolerations"] == tmpl["spec"]["tolerations"]
    assert t["spec"]["schedulingGates"] == [{"name": "kueue.x-k8s.io/topology"}]
    assert t["metadata"]["annotations"] == {"kueue.x-k8s.io/workload": "my-workload"}
    assert t["metadata"]["labels"]["stale"] == "kept"
    assert t["metadata"]["labels"]["training.kubeflow.org/job-role"] == "launcher"
    assert synced["spec"]["suspend"] is True  # the caller unsuspends
    # directives the desired template lacks are cleared
    cleared = mpi.sync_launcher_scheduling_directives(synced, mpi.new_launcher_pod_template(job))
    for key in ("nodeSelector", "tolerations", "schedulingGates"):
        assert key not in cleared["spec"]["template"]["spec"]
    resumed = mpi.with_launcher_suspend(synced, False)
    assert resumed["spec"]["suspend"] is False and synced["spec"]["suspend"] is True


# -- predicates -----------------------------------------------------------------------------------


def test_launcher_job_predicates() -> None:
    running = launcher_job()
    assert not mpi.is_job_finished(running)
    done = launcher_job(conditions=[{"type": "Complete", "status": "True"}])
    assert mpi.is_job_succeeded(done) and mpi.is_job_finished(done)
    assert not mpi.is_job_failed(done)
    failed = launcher_job(conditions=[{"type": "Failed", "status": "True"}])
    assert mpi.is_job_failed(failed) and mpi.is_job_finished(failed)
    not_yet = launcher_job(conditions=[{"type": "Failed", "status": "False"}])
    assert not mpi.is_job_failed(not_yet)
    assert mpi.is_job_suspended(launcher_job(suspend=True))
    assert not mpi.is_job_suspended(launcher_job(suspend=False))
    assert not mpi.is_job_suspended(launcher_job())


def test_pod_predicates() -> None:
    assert mpi.is_pod_running(pod("p", phase="Running"))
    assert mpi.is_pod_pending(pod("p", phase="Pending"))
    assert mpi.is_pod_failed(pod("p", phase="Failed"))
    assert not mpi.is_pod_running(pod("p"))
    assert mpi.is_pod_ready(pod("p", ready=True)) and not mpi.is_pod_ready(pod("p"))
    pods = [pod("a", phase="Running"), pod("b", phase="Pending"), pod("c", phase="Running")]
    assert mpi.count_running_pods(pods) == 2
    assert [p["metadata"]["name"] for p in mpi.running_pods(pods)] == ["a", "c"]


def test_is_clean_up_pods() -> None:
    assert mpi.is_clean_up_pods("All")
    assert mpi.is_clean_up_pods("Running")
    assert not mpi.is_clean_up_pods("None")
    assert not mpi.is_clean_up_pods(None)


def test_keep_worker_on_cleanup() -> None:
    running_policy = mpijob(runPolicy={"cleanPodPolicy": "Running"})
    all_policy = mpijob(runPolicy={"cleanPodPolicy": "All"})
    assert mpi.keep_worker_on_cleanup(running_policy, pod("p", phase="Succeeded"))
    assert mpi.keep_worker_on_cleanup(running_policy, pod("p", phase="Failed"))
    assert not mpi.keep_worker_on_cleanup(running_policy, pod("p", phase="Running"))
    assert not mpi.keep_worker_on_cleanup(running_policy, pod("p", phase="Pending"))
    assert not mpi.keep_worker_on_cleanup(all_policy, pod("p", phase="Succeeded"))
    # suspend deletes under the default None policy as well
    assert not mpi.keep_worker_on_cleanup(mpijob(), pod("p", phase="Succeeded"))


def test_should_create_launcher() -> None:
    workers = [pod("a", ready=True), pod("b")]
    assert mpi.should_create_launcher(mpijob(), workers)
    wait = mpijob(launcherCreationPolicy="WaitForWorkersReady")
    assert not mpi.should_create_launcher(wait, workers)
    assert mpi.should_create_launcher(wait, [pod("a", ready=True)])
    assert mpi.should_create_launcher(wait, [])


def _indexed(index: str | None) -> Obj:
    labels = {} if index is None else {mpi.REPLICA_INDEX_LABEL: index}
    return pod(f"w{index}", labels=labels)


def test_scale_down_victims() -> None:
    job = mpijob(workers=2)
    pods = [_indexed(i) for i in ("0", "1", "2", "3")]
    assert [p["metadata"]["name"] for p in mpi.scale_down_victims(job, pods)] == ["w2", "w3"]
    assert mpi.scale_down_victims(job, pods[:2]) == []
    # not a number: skipped; no label: Go stops the pass there
    odd = [_indexed("x"), _indexed("5"), _indexed(None), _indexed("6")]
    assert [p["metadata"]["name"] for p in mpi.scale_down_victims(job, odd)] == ["w5"]
    assert mpi.has_unlabelled_worker(job, odd)
    assert not mpi.has_unlabelled_worker(job, pods)
    # labels shifted by one with runLauncherAsWorker: Go's comparison hits the last wanted worker
    shifted = mpijob(workers=2, runLauncherAsWorker=True)
    pods = [_indexed(i) for i in ("1", "2", "3")]
    assert [p["metadata"]["name"] for p in mpi.scale_down_victims(shifted, pods)] == ["w2", "w3"]
