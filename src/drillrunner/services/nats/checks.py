"""Reconciling the stream's sequences with the publish acks (DESIGN: JetStream stream
sequences): every ack names the stream sequence the message got, so after the drill the
message at that sequence must carry that workload seq, no workload seq may be stored
twice, the run's messages must be stored in publish order, and the stream may have no
holes."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from itertools import pairwise

from drillrunner.core.actions import check
from drillrunner.core.verdicts import CheckResult, Measurement, Verdict
from drillrunner.engine.context import RunContext
from drillrunner.services.nats.workload import JsPublish, StoredMessage


@dataclass(frozen=True)
class Reconciliation:
    duplicates: list[int]  # workload seqs stored more than once
    mismatched: list[int]  # acked workload seqs not at the stream seq their ack named
    reused: list[int]  # stream seqs named by more than one ack
    out_of_order: int  # stored messages with a lower workload seq than the one before
    examples: list[dict[str, int | None]]


def reconcile(acks: dict[int, int], stored: list[StoredMessage]) -> Reconciliation:
    """Compare acks (workload seq -> acknowledged stream seq) with the stored messages."""
    at = {m.stream_seq: m.workload_seq for m in stored}
    counts = Counter(m.workload_seq for m in stored if m.workload_seq is not None)
    mismatched = sorted(w for w, s in acks.items() if at.get(s) != w)
    seqs = [m.workload_seq for m in stored if m.workload_seq is not None]
    return Reconciliation(
        duplicates=sorted(s for s, n in counts.items() if n > 1),
        mismatched=mismatched,
        reused=sorted(s for s, n in Counter(acks.values()).items() if n > 1),
        out_of_order=sum(1 for a, b in pairwise(seqs) if b < a),
        examples=[{"workload_seq": w, "acked_stream_seq": acks[w],
                   "stream_seq_now_holds": at.get(acks[w])} for w in mismatched[:10]],
    )


@check("nats.stream_sequences_consistent")
def stream_sequences_consistent(ctx: RunContext) -> CheckResult:
    """Every acknowledged publish is at the stream sequence its ack named, no workload seq
    is stored twice, no two acks name one sequence (a reset stream reuses them), the
    run's messages are in publish order and the stream has no holes."""
    clients = {n: c for n, c in ctx.workloads.items() if isinstance(c, JsPublish)}
    if not clients:
        return CheckResult(verdict=Verdict.UNKNOWN, summary="no nats.js_publish workload ran")
    totals = Counter[str]()
    evidence: dict[str, object] = {}
    state = None
    for name, client in clients.items():
        acks = client.acks()
        stored = client.read_stored()
        state = client.stream_state()
        r = reconcile(acks, stored)
        totals.update({"acks": len(acks), "stored": len(stored),
                       "duplicates": len(r.duplicates), "mismatched": len(r.mismatched),
                       "reused": len(r.reused), "out_of_order": r.out_of_order})
        evidence[name] = {
            "subject": client.subject,
            "acknowledged": len(acks),
            "stored": len(stored),
            "stream_seq_range_of_run": [stored[0].stream_seq, stored[-1].stream_seq]
            if stored else None,
            "duplicate_workload_seqs_sample": r.duplicates[:20],
            "acks_not_at_their_stream_seq_sample": r.examples,
            "stream_seqs_acked_twice_sample": r.reused[:20],
            "out_of_order": r.out_of_order,
        }
    assert state is not None
    evidence["stream"] = {"first_seq": state.first_seq, "last_seq": state.last_seq,
                          "messages": state.messages, "num_deleted": state.num_deleted}
    measurements: dict[str, Measurement] = {
        "stream_messages_read": totals["stored"],
        "duplicate_workload_seqs": totals["duplicates"],
        "acks_not_at_stream_seq": totals["mismatched"],
        "stream_seqs_acked_twice": totals["reused"],
        "out_of_order_messages": totals["out_of_order"],
        "stream_sequence_gaps": state.holes,
    }
    if totals["acks"] == 0:
        return CheckResult(verdict=Verdict.UNKNOWN, evidence=evidence,
                           measurements=measurements,
                           summary="no publish was acknowledged: nothing to reconcile")
    bad = {k: v for k, v in measurements.items() if k != "stream_messages_read" and v}
    summary = (f"{totals['acks']} acks reconciled with {totals['stored']} stored messages "
               f"(stream seqs {state.first_seq}-{state.last_seq}): ")
    if bad:
        summary += ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in bad.items())
    else:
        summary += "every ack at its sequence, no duplicates, no gaps, in order"
    return CheckResult(verdict=Verdict.FAIL if bad else Verdict.PASS, summary=summary,
                       evidence=evidence, measurements=measurements)
