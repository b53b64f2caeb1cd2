"""drill audit: static checks of Kubernetes manifests against the review's claims."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated

import typer

from drillrunner.core.errors import ExitCode


class Format(StrEnum):
    TEXT = "text"
    JSON = "json"


def audit(
    paths: Annotated[list[str], typer.Argument(
        help="Manifest files, folders (searched for *.yaml, *.yml, *.json) or '-' for a "
             "stream such as 'kustomize build' output.", metavar="PATH...")],
    fmt: Annotated[Format, typer.Option("--format", help="text or json.")] = Format.TEXT,
) -> None:
    """Check manifests against the review's claims: probes, requests, PVCs, non-root, TLS
    ingress, kill-switch and breakers, egress, plaintext credentials, simulation guard.

    Each finding reads `file:line: claim: resource: message [rule]`. Exit 0 no findings,
    1 findings, 2 input refused (one line on stderr: file, line, reason).
    """
    from drillrunner.audit import AuditInputError, audit_paths

    try:
        resources, results = audit_paths(paths)
    except AuditInputError as exc:  # `file:line: reason`, as the findings read
        typer.echo(str(exc), err=True)
        raise typer.Exit(int(exc.exit_code)) from None
    findings = [f for r in results for f in r.findings]
    if fmt is Format.JSON:
        typer.echo(json.dumps({
            "resources": len(resources),
            "rules": [{"rule": r.rule.name, "claims": list(r.rule.claims),
                       "verdict": r.verdict.value, "findings": len(r.findings)}
                      for r in results],
            "findings": [f.to_json() for f in findings],
        }, indent=2))
    else:
        for f in findings:
            at = f"{f.file}:{f.line}" if f.line else f.file
            what = f"{f.resource} container {f.container}" if f.container else f.resource
            typer.echo(f"{at}: {f.claim}: {what}: {f.message} [{f.rule}]")
        failed = sum(1 for r in results if r.findings)
        typer.echo(f"{len(resources)} resource(s), {len(results)} rule(s): "
                   f"{len(results) - failed} passed, {failed} failed, "
                   f"{len(findings)} finding(s)")
    if findings:
        raise typer.Exit(int(ExitCode.FAILED))


def register(app: typer.Typer) -> None:
    app.command()(audit)
