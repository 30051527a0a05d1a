"""The wrapper go.mod generator of tools/conformance (runs in the default suite: no Go needed)."""

from __future__ import annotations

import re

import pytest
from toolmodules import load_tool

gen = load_tool("tools/conformance/gen_wrapper_gomod.py")

KUBERNETES_GOMOD = """\
module k8s.io/kubernetes

go 1.26.0

godebug default=go1.26

require (
\tgithub.com/spf13/cobra v1.10.2
\tk8s.io/api v0.0.0
\tk8s.io/apimachinery v0.0.0
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/apimachinery => ./staging/src/k8s.io/apimachinery // the machinery
\tgithub.com/example/fork => github.com/example/fork v1.2.3
)

replace k8s.io/kms => ./staging/src/k8s.io/kms
"""


def test_staging_modules_are_pinned_to_the_matching_v0_release() -> None:
    out = gen.wrapper_gomod(KUBERNETES_GOMOD, kubernetes_version="v1.36.3")
    assert "require k8s.io/kubernetes v1.36.3" in out
    assert "\tk8s.io/api => k8s.io/api v0.36.3" in out
    assert "\tk8s.io/apimachinery => k8s.io/apimachinery v0.36.3" in out
    assert "\tk8s.io/kms => k8s.io/kms v0.36.3" in out
    assert "./staging" not in out


def test_go_godebug_and_foreign_replaces_are_carried_over() -> None:
    out = gen.wrapper_gomod(KUBERNETES_GOMOD, kubernetes_version="v1.37.2", module="x.local/m")
    assert out.startswith("module x.local/m\n")
    assert "\ngo 1.26.0\n" in out
    assert "\ngodebug default=go1.26\n" in out
    assert "\tgithub.com/example/fork => github.com/example/fork v1.2.3" in out
    assert "\tk8s.io/api => k8s.io/api v0.37.2" in out
    assert "\tk8s.io/kubernetes/cmd/kube-apiserver" in out


def test_prerelease_tags_map_to_prerelease_staging_versions() -> None:
    assert gen.staging_version("v1.38.0-beta.0") == "v0.38.0-beta.0"


@pytest.mark.parametrize("bad", ["1.36.3", "v2.0.0", "v1.36"])
def test_bad_versions_name_the_expected_form(bad: str) -> None:
    with pytest.raises(ValueError, match=re.escape("v1.36.3")):
        gen.staging_version(bad)


def test_a_local_replace_outside_staging_is_refused_with_the_fix() -> None:
    text = KUBERNETES_GOMOD.replace("github.com/example/fork v1.2.3", "../elsewhere/fork")
    with pytest.raises(ValueError, match=re.escape("gen_wrapper_gomod.py")):
        gen.wrapper_gomod(text, kubernetes_version="v1.36.3")
