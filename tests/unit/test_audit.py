"""drill audit: deploy/k8s passes, each rule fails on a manifest that breaks it, input errors
exit 2, and every manifest of deploy/k8s validates against the Kubernetes schemas."""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from drillrunner.audit import all_rules, load_paths
from drillrunner.cli import main
from tests.support import need_module

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "k8s"
FIXTURES = Path(__file__).parent / "audit_fixtures"

POD = """\
      securityContext: {runAsNonRoot: true, runAsUser: 10001}
      containers:
        - name: app
          image: app:1
          readinessProbe: {httpGet: {path: /readyz, port: 8080}}
          livenessProbe: {httpGet: {path: /livez, port: 8080}}
          resources: {requests: {cpu: 100m, memory: 64Mi}}
"""


def deployment(name: str = "app", pod: str = POD, labels: str = "{app: app}") -> str:
    return (f"apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}, namespace: ns}}\n"
            f"spec:\n  selector: {{matchLabels: {labels}}}\n  template:\n"
            f"    metadata: {{labels: {labels}}}\n    spec:\n{pod}")


def run_audit(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]
              ) -> tuple[int, list[dict[str, Any]]]:
    path = tmp_path / "m.yaml"
    path.write_text(textwrap.dedent(text))
    code = main(["audit", str(path), "--format", "json"])
    out = json.loads(capsys.readouterr().out)
    return code, out["findings"]


def test_deploy_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", str(DEPLOY)]) == 0
    assert "0 finding(s)" in capsys.readouterr().out


def test_a_compliant_deployment_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                       ) -> None:
    assert run_audit(tmp_path, deployment(), capsys) == (0, [])


def test_secret_key_ref_is_not_flagged(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", str(FIXTURES / "compliant-secretkeyref.yaml")]) == 0
    capsys.readouterr()


BROKEN: dict[str, tuple[str, str, str, str | None]] = {
    # case: (manifest, rule, claim, resource); container "app" unless said otherwise
    "no probes": (deployment(pod=POD.replace("          livenessProbe: {httpGet: "
                                             "{path: /livez, port: 8080}}\n", "")),
                  "probes-declared", "C01-ha-probes", "Deployment/ns/app"),
    "no requests": (deployment(pod=POD.replace("requests: {cpu: 100m, memory: 64Mi}",
                                               "limits: {cpu: 100m}")),
                    "resource-requests", "C05-probe-coverage", "Deployment/ns/app"),
    "cronjob without requests": ("""\
        apiVersion: batch/v1
        kind: CronJob
        metadata: {name: nightly, namespace: ns}
        spec:
          schedule: "0 3 * * *"
          jobTemplate:
            spec:
              template:
                spec:
                  restartPolicy: Never
                  securityContext: {runAsNonRoot: true, runAsUser: 10001}
                  containers: [{name: app, image: app:1}]
        """, "resource-requests", "C05-probe-coverage", "CronJob/ns/nightly"),
    "init container without requests": (deployment(pod=POD + """\
      initContainers:
        - {name: app, image: init:1}
"""), "resource-requests", "C05-probe-coverage", "Deployment/ns/app"),
    "emptyDir data": ((FIXTURES / "emptydir-data.yaml").read_text(), "data-on-pvc",
                      "C04-persistent-storage", "Deployment/shop/redis"),
    "feast registry on emptyDir": (deployment("feast-registry", POD + """\
      volumes: [{name: registry, emptyDir: {}}]
""", "{app.kubernetes.io/name: feast}").replace(
        "resources: {requests: {cpu: 100m, memory: 64Mi}}",
        "resources: {requests: {cpu: 100m, memory: 64Mi}}\n"
        "          volumeMounts: [{name: registry, mountPath: /data/registry}]"),
        "data-on-pvc", "C04-persistent-storage", "Deployment/ns/feast-registry"),
    "root user": (deployment(pod=POD.replace("runAsNonRoot: true, runAsUser: 10001",
                                             "runAsUser: 0")),
                  "non-root", "C07-non-root", "Deployment/ns/app"),
    "no security context": (deployment(pod=POD.replace(
        "      securityContext: {runAsNonRoot: true, runAsUser: 10001}\n", "")),
        "non-root", "C07-non-root", "Deployment/ns/app"),
    "ingress without tls": ((FIXTURES / "ingress-no-tls.yaml").read_text(), "ingress-tls",
                            "C02-tls-ingress", "Ingress/shop/shop"),
    "ingress with tls but no redirect": ("""\
        apiVersion: networking.k8s.io/v1
        kind: Ingress
        metadata:
          name: web
          namespace: ns
          annotations: {cert-manager.io/cluster-issuer: prod,
                        nginx.ingress.kubernetes.io/ssl-redirect: "false"}
        spec:
          tls: [{hosts: [a.example.com], secretName: a-tls}]
          rules: [{host: a.example.com}]
        """, "ingress-tls", "C02-tls-ingress", "Ingress/ns/web"),
    "egress 0.0.0.0/0": ((FIXTURES / "egress-any.yaml").read_text(), "egress-restricted",
                         "C10-egress-policy", "NetworkPolicy/shop/shop-egress"),
    "egress without to": ("""\
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: open, namespace: ns}
        spec:
          podSelector: {}
          policyTypes: [Egress]
          egress: [{ports: [{port: 443}]}]
        """, "egress-restricted", "C10-egress-policy", "NetworkPolicy/ns/open"),
    "kill-switch disengaged": ("""\
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: oms-kill-switch, namespace: ns}
        data:
          kill-switch.yaml: |
            default: disengaged
            fail_closed: true
        """, "kill-switch-breakers", "C11-kill-switch-breakers", "ConfigMap/ns/oms-kill-switch"),
    "breaker disabled": ("""\
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: oms-circuit-breakers, namespace: ns}
        data:
          circuit-breakers.yaml: |
            postgres: {enabled: false}
        """, "kill-switch-breakers", "C11-kill-switch-breakers",
        "ConfigMap/ns/oms-circuit-breakers"),
    "literal password in env": ((FIXTURES / "literal-password.yaml").read_text(),
                                "no-plaintext-credentials", "C14-external-secrets",
                                "Deployment/shop/shop"),
    "dsn with password in a configmap": ("""\
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: settings, namespace: ns}
        data:
          url: postgresql://app:hunter2@db:5432/app
        """, "no-plaintext-credentials", "C14-external-secrets", "ConfigMap/ns/settings"),
    "secret in the manifests": ("""\
        apiVersion: v1
        kind: Secret
        metadata: {name: creds, namespace: ns}
        stringData: {password: hunter2}
        """, "no-plaintext-credentials", "C14-external-secrets", "Secret/ns/creds"),
    "simulation in production": ("""\
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: oms-config, namespace: ns}
        data:
          oms.yaml: |
            environment: production
            simulation: true
        """, "simulation-off-in-production", "C06-simulation-guard", "ConfigMap/ns/oms-config"),
    "simulation env in production": (deployment(pod=POD + """\
          env:
            - {name: APP_ENV, value: production}
            - {name: SIMULATION_MODE, value: "true"}
""".replace("          env", "          env", 1)),
        "simulation-off-in-production", "C06-simulation-guard", "Deployment/ns/app"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_each_rule_fails_on_a_manifest_that_breaks_it(
        case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text, rule, claim, resource = BROKEN[case]
    code, findings = run_audit(tmp_path, text, capsys)
    assert code == 1, findings
    assert {f["rule"] for f in findings} == {rule}, findings
    assert all(f["claim"] == claim and f["resource"] == resource for f in findings), findings
    assert all(f["message"] and "hunter2" not in f["message"] for f in findings)


def test_every_rule_has_a_breaking_case_and_cites_claims() -> None:
    registry = yaml.safe_load((ROOT / "drills" / "claims.yaml").read_text())
    known = {c["id"] for c in registry["claims"]}
    rules = all_rules()
    # A breaking case here, or marked lines in the corpus (tests/unit/test_audit_corpus.py).
    covered = {rule for _, rule, _, _ in BROKEN.values()} | corpus_rules()
    assert {r.name for r in rules} == covered
    for r in rules:
        assert r.claims and set(r.claims) <= known, r


def test_container_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, findings = run_audit(tmp_path, BROKEN["no probes"][0], capsys)
    assert findings[0]["container"] == "app" and "livenessProbe" in findings[0]["message"]


def corpus_rules() -> set[str]:
    """Rules with a marked finding in the corpus (tests/unit/audit_corpus)."""
    found = set()
    for path in (Path(__file__).parent / "audit_corpus").rglob("*.yaml"):
        for text in path.read_text().splitlines():
            if "# finding:" in text:
                found.update(r.strip() for r in text.split("# finding:")[1].split(","))
    return found


LINES = FIXTURES / "lines" / "every-rule.yaml"  # `# finding: RULE` marks the expected lines


def test_each_finding_points_at_its_line(capsys: pytest.CaptureFixture[str]) -> None:
    marked = {(n, rule.strip()) for n, text in enumerate(LINES.read_text().splitlines(), 1)
              if "# finding:" in text for rule in text.split("# finding:")[1].split(",")}
    assert {rule for _, rule in marked} <= {r.name for r in all_rules()}
    assert main(["audit", str(LINES), "--format", "json"]) == 1
    findings = json.loads(capsys.readouterr().out)["findings"]
    assert {(f["line"], f["rule"]) for f in findings} == marked
    assert {f["file"] for f in findings} == {str(LINES)}
    in_list = [f["source"] for f in findings if f["resource"] == "Deployment/shop/worker"]
    assert in_list and set(in_list) == {f"{LINES}#7[0]"}  # document 7, item 0 of a List
    assert main(["audit", str(LINES)]) == 1
    text = capsys.readouterr().out.splitlines()
    for f in findings:  # like a compiler: file:line: claim: ...
        assert any(t.startswith(f"{LINES}:{f['line']}: {f['claim']}: {f['resource']}")
                   and t.endswith(f"[{f['rule']}]") for t in text), f


def test_journal_findings_keep_their_shape_and_add_the_line() -> None:
    from drillrunner.audit import audit_paths, journal_events

    path = FIXTURES / "ingress-no-tls.yaml"
    _, results = audit_paths([str(path)])
    findings = [f for event in journal_events(results) for f in event["findings"]]
    old = {"claim", "claims", "rule", "resource", "message", "source", "container"}
    assert findings and all(old <= f.keys() for f in findings)
    # spec (no spec.tls) and metadata (no annotations): the objects that should hold them
    assert sorted((f["file"], f["line"]) for f in findings) == [(str(path), 4), (str(path), 4),
                                                                 (str(path), 5)]


def test_jobs_need_no_probes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    job = ("apiVersion: batch/v1\nkind: Job\nmetadata: {name: j, namespace: ns}\nspec:\n"
           "  template:\n    spec:\n      restartPolicy: Never\n" + POD.replace(
               "          readinessProbe: {httpGet: {path: /readyz, port: 8080}}\n"
               "          livenessProbe: {httpGet: {path: /livez, port: 8080}}\n", ""))
    assert run_audit(tmp_path, job, capsys) == (0, [])


def test_placeholders_are_not_credentials(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                          ) -> None:
    text = """\
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: tpl, namespace: ns}
        data:
          feature_store.yaml: |
            password: ${FEAST_PASSWORD}
          dsn-template: "host=db user=oms password={{ .password }}"
          url: postgresql://oms:$(DB_PASSWORD)@db/oms
        """
    assert run_audit(tmp_path, text, capsys) == (0, [])


def test_stdin_stream(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
                      ) -> None:
    stream = "\n---\n".join(p.read_text() for p in sorted(FIXTURES.glob("*.yaml")))
    monkeypatch.setattr("sys.stdin", io.StringIO(stream))
    assert main(["audit", "-", "--format", "json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["resources"] == 7
    assert {f["rule"] for f in out["findings"]} == {
        "data-on-pvc", "ingress-tls", "egress-restricted", "no-plaintext-credentials"}
    assert all(f["source"].startswith("-#") for f in out["findings"])
    assert all(f["file"] == "-" and f["line"] > 0 for f in out["findings"])


def test_kustomization_files_are_skipped() -> None:
    kinds = {r.kind for r in load_paths([str(DEPLOY)])}
    assert "Kustomization" not in kinds and {"StatefulSet", "Ingress"} <= kinds


@pytest.mark.parametrize("content, reason", [
    ("a: [1, 2\n", "not valid YAML"),
    (b"\xff\xfe\x00bad", "not UTF-8"),
])
def test_unreadable_input_exits_2(content: str | bytes, reason: str, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    assert main(["audit", str(FIXTURES / "egress-any.yaml"), str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and reason in err


def test_missing_path_and_empty_input_exit_2(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", str(tmp_path / "nope.yaml")]) == 2
    assert "no such file" in capsys.readouterr().err
    (tmp_path / "kustomization.yaml").write_text("resources: []\n")
    assert main(["audit", str(tmp_path)]) == 2
    assert "no Kubernetes resources" in capsys.readouterr().err


# Custom resources (cert-manager, External Secrets) have no schema in kubernetes-validate.
CRD_GROUPS = ("cert-manager.io/", "external-secrets.io/")


def test_deploy_manifests_validate_against_kubernetes_schemas() -> None:
    kv: Any = need_module("kubernetes_validate", install="pip install kubernetes-validate")
    version = kv.latest_version()
    checked = 0
    for res in load_paths([str(DEPLOY)]):
        if str(res.body["apiVersion"]).startswith(CRD_GROUPS):
            continue
        kv.validate(res.body, version, strict=True)  # raises with the path of the error
        checked += 1
    assert checked >= 35


def test_deploy_labels_find_every_member() -> None:
    servers: dict[str, int] = {}
    for res in load_paths([str(DEPLOY)]):
        if res.kind in ("StatefulSet", "Deployment"):
            labels = res.body["spec"]["template"]["metadata"]["labels"]
            assert labels["app.kubernetes.io/part-of"] == "drill-stack", res.ref
            assert res.namespace == "drill", res.ref
            kind = labels["drill.dev/member-kind"]
            key = labels["app.kubernetes.io/name"] + ("/sentinel" if kind == "sentinel" else "")
            servers[key] = servers.get(key, 0) + res.body["spec"].get("replicas", 1)
    assert servers == {"timescaledb": 2, "redis": 2, "redis/sentinel": 3, "kafka": 3,
                       "nats": 3, "feast": 2, "oms": 2}


def test_audit_verdicts_feed_the_claim_matrix(tmp_path: Path) -> None:
    from drillrunner.audit import audit_paths, journal_events
    from drillrunner.evidence.journal import Journal
    from drillrunner.report.bundle import render_bundle
    from drillrunner.report.claims import claim_rows
    from drillrunner.report.view import load_run

    registry = [{"id": c, "text": c, "source": "s"} for c in
                ("C02-tls-ingress", "C10-egress-policy", "C08-backup-restore",
                 "C15-dr-drills")]
    bundle = tmp_path / "bundle"
    journal = Journal(bundle / "journal.jsonl")
    journal.append("run-start", run_id="r1", target="fake", claims_registry=registry,
                   claim_citations={})
    _, results = audit_paths([str(FIXTURES / "ingress-no-tls.yaml"), str(DEPLOY)])
    for event in journal_events(results):
        journal.append("audit-rule", **event)
    journal.append("run-end", run_id="r1", outcome="passed")
    journal.close()
    rows = {r.id: r for r in claim_rows(load_run(bundle))}
    assert rows["C02-tls-ingress"].verdict == "FAIL"
    assert rows["C02-tls-ingress"].tested_by == ["audit:ingress-tls"]
    assert "audit:ingress-tls (3 finding(s))" in rows["C02-tls-ingress"].why
    assert rows["C10-egress-policy"].verdict == "PASS"
    assert rows["C08-backup-restore"].verdict == "PASS"  # deploy/k8s has its backup jobs
    assert rows["C08-backup-restore"].tested_by == ["audit:backups",
                                                 "audit:postgres-pgbackrest-backups"]
    assert rows["C15-dr-drills"].verdict == "UNTESTED" and rows["C15-dr-drills"].untested
    render_bundle(bundle)
    summary = json.loads((bundle / "summary.json").read_text())
    assert summary["claims"]["C02-tls-ingress"] == "FAIL"
    assert "audit:ingress-tls" in (bundle / "report.md").read_text()
