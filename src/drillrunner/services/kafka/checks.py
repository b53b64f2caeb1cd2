"""Kafka's own reconciliation: acknowledged offsets against what the partition holds."""

from __future__ import annotations

from drillrunner.core.actions import check
from drillrunner.core.verdicts import CheckResult, Verdict
from drillrunner.engine.context import RunContext
from drillrunner.engine.history import OpStatus
from drillrunner.services.kafka.workload import SequencedProduces


@check("kafka.acknowledged_offsets_intact")
def acknowledged_offsets_intact(ctx: RunContext) -> CheckResult:
    """Every acknowledged message is still at the offset its delivery report gave. A lost
    message, or one the new leader's log overwrote after truncation, FAILS. Duplicates
    (the same seq at several offsets: retries without idempotence) are reported."""
    clients = {n: c for n, c in ctx.workloads.items() if isinstance(c, SequencedProduces)}
    if not clients:
        return CheckResult(verdict=Verdict.UNKNOWN, summary="no Kafka workload ran")
    acked = moved = dupes = 0
    evidence: dict[str, object] = {}
    for name, c in clients.items():
        ok_seqs = {o.seq for o in ctx.history.ops(name) if o.status is OpStatus.OK}
        if not c.found:
            c.read_back(ok_seqs)
        bad = {s: (off, c.found.get(s, [])) for s, off in c.acked.items()
               if s in ok_seqs and off not in c.found.get(s, [])}
        dup = c.duplicates()
        acked += len(ok_seqs)
        moved += len(bad)
        dupes += sum(len(v) - 1 for v in dup.values())
        evidence[name] = {
            "acks": str(c.acks),
            "start_offset": c.start_offset,
            "acknowledged": len(ok_seqs),
            "not_at_acknowledged_offset": len(bad),
            "sample": [{"seq": s, "acked_offset": off, "found_at": at}
                       for s, (off, at) in sorted(bad.items())[:20]],
            "duplicate_messages": sum(len(v) - 1 for v in dup.values()),
            "duplicate_sample": {str(s): v for s, v in sorted(dup.items())[:20]},
        }
    measurements = {"acknowledged_offsets_missing": moved, "duplicate_messages": dupes}
    if acked == 0:
        return CheckResult(verdict=Verdict.UNKNOWN, summary="no produce was acknowledged",
                           evidence=evidence, measurements=measurements)
    ok = moved == 0
    return CheckResult(
        verdict=Verdict.PASS if ok else Verdict.FAIL,
        summary=f"{moved} of {acked} acknowledged messages are not at their acknowledged "
                f"offset; {dupes} duplicate messages",
        evidence=evidence, measurements=measurements)
