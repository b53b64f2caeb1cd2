"""Audit rules: small typed functions registered by name with the claims they test.

`@rule(...)` only marks a function (like the engine's action decorators); `all_rules()`
collects the marked functions of drillrunner.audit.rules and of the services' audit
modules in definition order.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from drillrunner.audit.model import Finding, Problem, Resource

RuleFn = Callable[[Sequence[Resource]], Iterable[Problem]]
F = TypeVar("F", bound=RuleFn)
MARK = "__drill_audit_rule__"


class RuleVerdict(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Rule:
    name: str
    claims: tuple[str, ...]
    fn: RuleFn
    doc: str

    def run(self, resources: Sequence[Resource]) -> list[Finding]:
        return [Finding(claim=self.claims[0], claims=list(self.claims), rule=self.name,
                        resource=p.resource.ref, container=p.container, message=p.message,
                        source=p.resource.source, file=p.resource.file or p.resource.source,
                        line=p.line or p.resource.line)
                for p in self.fn(resources)]


@dataclass(frozen=True)
class RuleResult:
    rule: Rule
    findings: list[Finding]

    @property
    def verdict(self) -> RuleVerdict:
        return RuleVerdict.FAIL if self.findings else RuleVerdict.PASS


def rule(name: str, *, claims: Sequence[str]) -> Callable[[F], F]:
    if not claims:
        raise ValueError(f"audit rule {name} must cite at least one claim")

    def deco(fn: F) -> F:
        setattr(fn, MARK, (name, tuple(claims)))
        return fn

    return deco


def all_rules() -> list[Rule]:
    """The generic rules (audit/rules.py, credentials.py, rules_probes.py), then those each
    service owns (its spec's `audit` module, services/registry.py), each in definition order."""
    from drillrunner.services.registry import REGISTRY

    found: list[Rule] = []
    for name in ["drillrunner.audit.rules", "drillrunner.audit.credentials",
                 "drillrunner.audit.rules_probes", "drillrunner.audit.rules_ops",
                 *REGISTRY.audit_modules()]:
        for fn in vars(importlib.import_module(name)).values():
            mark = getattr(fn, MARK, None)
            if mark is not None and fn.__module__ == name:
                doc = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
                found.append(Rule(mark[0], mark[1], fn, doc))
    names = [r.name for r in found]
    if len(set(names)) != len(names):
        raise ValueError(f"audit rules registered twice: {names}")
    return found


def evaluate(resources: Sequence[Resource], rules: Sequence[Rule] | None = None
             ) -> list[RuleResult]:
    return [RuleResult(r, r.run(resources)) for r in (rules or all_rules())]
