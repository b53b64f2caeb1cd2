"""Static audit of Kubernetes manifests against the production readiness review's claims.

`drill audit PATH...` and `drill run --audit PATH` use it; each rule cites claim ids of
drills/claims.yaml so its verdict lands in the evidence bundle's claim matrix.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from drillrunner.audit.loader import AuditInputError, load_paths
from drillrunner.audit.model import Finding, Resource
from drillrunner.audit.registry import Rule, RuleResult, all_rules, evaluate

__all__ = ["AuditInputError", "Finding", "Resource", "Rule", "RuleResult", "all_rules",
           "audit_paths", "citations", "evaluate", "journal_events", "load_paths"]


def audit_paths(paths: Sequence[str]) -> tuple[list[Resource], list[RuleResult]]:
    """Load and audit; raises AuditInputError for unreadable input or no resources."""
    resources = load_paths(paths)
    if not resources:
        raise AuditInputError(f"{', '.join(paths)}: no Kubernetes resources found")
    return resources, evaluate(resources)


def journal_events(results: Sequence[RuleResult]) -> list[dict[str, Any]]:
    """The `audit-rule` events' payloads, one per rule, for the run's journal."""
    return [{"rule": r.rule.name, "claims": list(r.rule.claims), "verdict": r.verdict.value,
             "findings": [f.to_json() for f in r.findings]} for r in results]


def citations() -> dict[str, list[str]]:
    """claim id -> every audit rule that cites it (a claim passes only when all of them ran
    and passed)."""
    cited: dict[str, list[str]] = {}
    for rule in all_rules():
        for claim in rule.claims:
            cited.setdefault(claim, []).append(rule.name)
    return {claim: sorted(rules) for claim, rules in sorted(cited.items())}
