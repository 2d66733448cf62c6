"""`infratech kubeconfig STACK --team TEAM`: kubeconfigs for team members that load with the
Kubernetes Python client, log in through `kubectl oidc-login` against the stack's issuer or carry a
ServiceAccount token with its expiry (made against the kube-apiserver double), and hold no client
key and no admin token."""

from __future__ import annotations

import argparse
import stat
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import api_server_double
import pytest
import yaml
from api_server_double import ISSUED_TOKEN, ApiServerDouble

from infratech.cli.commands import access as command
from infratech.cli.errors import BadFlag
from infratech.cli.plan import record
from infratech.cli.stacks import Project
from infratech.exits import EXIT_TOOL

ISSUER = {"issuer_url": "https://login.example.fr/realms/infratech", "client_id": "kubernetes", "groups_claims": ["groups"]}
CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIBdzCCAR2gAwIBAgIBADAKBggqhkjOPQQDAjAjMSEwHwYDVQQDDBhrM3Mtc2Vy\n-----END CERTIFICATE-----\n"
# a stand-in for int128/kubelogin's `kubectl oidc-login get-token`: refuses what the plugin refuses
# (no issuer or client id), otherwise answers an ExecCredential as the plugin does after a login
OIDC_LOGIN_DOUBLE = """#!{python}
import json, os, sys
args = sys.argv[1:]
if args[:2] != ["oidc-login", "get-token"]:
    sys.exit("unknown command " + " ".join(args))
opts = dict(a[2:].split("=", 1) for a in args[2:])
if not opts.get("oidc-issuer-url") or not opts.get("oidc-client-id"):
    sys.exit("error: --oidc-issuer-url and --oidc-client-id are required")
info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
print(json.dumps({{"apiVersion": info["apiVersion"], "kind": "ExecCredential", "status": {{"token": "id-token-from-" + opts["oidc-issuer-url"]}}}}))
"""
ADMIN_SECRETS = ("client-key-data", "client-certificate-data", "client-key", "password", "username")


def variant_project(project, tmp_path, stack, edit) -> Project:
    data = yaml.safe_load(project.stack_file(stack).read_text(encoding="utf-8"))
    edit(data["config"])
    stack_dir = tmp_path / f"stacks-{stack}"
    stack_dir.mkdir(exist_ok=True)
    (stack_dir / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    return Project(root=project.root, name=project.name, stack_dir=stack_dir, main=project.main)


def args(stack, *extra):
    parser = argparse.ArgumentParser()
    command.add(parser.add_subparsers(dest="command"))
    return parser.parse_args(["kubeconfig", stack, *extra])


def load(path):
    """The kubeconfig loaded as kubectl's Python twin loads it: (Configuration, the file's YAML)."""
    from kubernetes import client, config

    configuration = client.Configuration()
    config.load_kube_config(config_file=str(path), client_configuration=configuration)
    return configuration, yaml.safe_load(path.read_text())


def bearer(configuration):
    """The Authorization header the client will send."""
    return configuration.auth_settings()["BearerToken"]["value"]


def no_admin_secret(doc):
    for user in doc["users"]:
        assert not set(user["user"]) & set(ADMIN_SECRETS), user["user"].keys()


@pytest.fixture
def ca_file(tmp_path):
    path = tmp_path / "ca.pem"
    path.write_text(CA_PEM)
    return path


@pytest.mark.parametrize("stack,provider", [("ovh-gra11", "ovh"), ("scaleway-fr-par-2-l4", "scaleway"), ("existing-onprem", "existing")])
def test_an_oidc_kubeconfig_should_log_in_through_kubelogin_against_the_stacks_issuer(stack, provider, project, tmp_path, ca_file, monkeypatch):
    pytest.importorskip("kubernetes")
    proj = variant_project(project, tmp_path, stack, lambda c: c[f"infratech:{provider}"].update(oidc=ISSUER))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    kubectl = bin_dir / "kubectl"
    kubectl.write_text(OIDC_LOGIN_DOUBLE.format(python=sys.executable))
    kubectl.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    team = "applied"
    out = tmp_path / "team.kubeconfig"
    code = command.run(args(stack, "--team", team, "--server", "https://api.example.fr:6443", "--certificate-authority", str(ca_file), "--out", str(out)), proj)
    assert code == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    configuration, doc = load(out)
    assert configuration.host == "https://api.example.fr:6443"
    assert Path(configuration.ssl_ca_cert).read_text() == CA_PEM
    assert bearer(configuration) == f"Bearer id-token-from-{ISSUER['issuer_url']}"
    (user,) = doc["users"]
    assert user["user"]["exec"]["command"] == "kubectl"
    assert user["user"]["exec"]["args"] == ["oidc-login", "get-token", f"--oidc-issuer-url={ISSUER['issuer_url']}", f"--oidc-client-id={ISSUER['client_id']}"]
    assert doc["contexts"][0]["context"]["namespace"] == team
    no_admin_secret(doc)
    assert "infratech:applied" in out.read_text()  # the team's groups, as its RoleBindings name them


def test_ovh_oidc_should_configure_the_mks_api_server(project, tmp_path):
    proj = variant_project(project, tmp_path, "ovh-gra11", lambda c: c["infratech:ovh"].update(oidc=ISSUER))
    rec = record(proj, "ovh-gra11")
    (oidc,) = [r for r in rec.resources if r.type == "ovh:CloudProject/kubeOidc:KubeOidc"]
    assert (oidc.inputs["issuerUrl"], oidc.inputs["clientId"], oidc.inputs["oidcGroupsClaims"]) == (ISSUER["issuer_url"], "kubernetes", ["groups"])
    assert rec.outputs["access"]["oidc"]["issuer_url"] == ISSUER["issuer_url"]


def test_without_an_issuer_a_member_token_should_come_with_its_expiry(project, tmp_path, ca_file, monkeypatch):
    pytest.importorskip("kubernetes")
    url, server = api_server_double.start()
    try:
        api_server_double.reset()
        monkeypatch.setenv("KUBECONFIG", str(api_server_double.kubeconfig(url, tmp_path / "admin.kubeconfig", user="platform-admin", token="admin-token")))
        monkeypatch.setenv("TMPDIR", str(tmp_path))
        out = tmp_path / "alice.kubeconfig"
        argv = ["--team", "pretraining", "--server", url, "--certificate-authority", str(ca_file), "--token-for", "alice", "--duration", "8h", "--out", str(out)]
        assert command.run(args("existing-onprem", *argv), project) == 0
        configuration, doc = load(out)
        assert bearer(configuration) == f"Bearer {ISSUED_TOKEN}"
        (user,) = doc["users"]
        (ext,) = user["user"]["extensions"]
        expires = datetime.fromisoformat(ext["extension"]["expirationTimestamp"].replace("Z", "+00:00"))
        assert timedelta(hours=7, minutes=59) < expires - datetime.now(timezone.utc) <= timedelta(hours=8)
        no_admin_secret(doc)
        assert "admin-token" not in out.read_text()
        token_request = [r for r in ApiServerDouble.requests if r["path"].endswith("/serviceaccounts/member-alice/token")]
        assert yaml.safe_load(token_request[0]["body"])["spec"]["expirationSeconds"] == 8 * 3600
        bindings = {k[2]: o["roleRef"]["name"] for k, o in ApiServerDouble.objects.items() if k[1] == "rolebindings"}
        assert bindings == {"member-alice-team-member": "team-member", "member-alice-infratech-team-reader": "infratech-team-reader"}
        # someone without the right gets told so
        api_server_double.reset(forbidden={"pretraining"})
        assert command.run(args("existing-onprem", *argv), project) == EXIT_TOOL
    finally:
        server.shutdown()


@pytest.mark.parametrize(
    "extra,flag",
    [
        ([], "--token-for: stack 'existing-onprem' configures no OIDC issuer"),
        (["--token-for", "alice", "--duration", "5m"], "--duration: 5m is outside 10m..7d"),
        (["--token-for", "Alice Smith"], "--token-for: 'Alice Smith' must be a lowercase DNS label"),
    ],
)
def test_bad_flags_should_be_refused_naming_them(extra, flag, project, ca_file):
    with pytest.raises(BadFlag, match=flag.replace(".", r"\.")):
        command.build(args("existing-onprem", "--team", "pretraining", "--server", "https://api:6443", "--certificate-authority", str(ca_file), *extra), project)


def test_an_unknown_team_or_endpoint_should_name_the_flag(project):
    with pytest.raises(BadFlag, match="--team: 'nobody' is not a team of stack 'ovh-gra11'; teams: pretraining, applied"):
        command.build(args("ovh-gra11", "--team", "nobody"), project)
    with pytest.raises(BadFlag, match="--server: the API endpoint of stack 'ovh-gra11' is known once it is deployed"):
        command.build(args("ovh-gra11", "--team", "pretraining"), project)
