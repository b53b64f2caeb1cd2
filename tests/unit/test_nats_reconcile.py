"""The JetStream reconciliation arithmetic, on made-up acks and stored messages."""

from __future__ import annotations

from drillrunner.services.nats.checks import reconcile
from drillrunner.services.nats.workload import StoredMessage, StreamState, subject_token


def stored(*pairs: tuple[int, int | None]) -> list[StoredMessage]:
    return [StoredMessage(s, w) for s, w in pairs]


def test_clean_run_reconciles() -> None:
    r = reconcile({1: 10, 2: 11, 4: 13}, stored((10, 1), (11, 2), (12, 3), (13, 4)))
    assert (r.duplicates, r.mismatched, r.reused, r.out_of_order) == ([], [], [], 0)


def test_a_duplicate_is_found() -> None:
    r = reconcile({1: 10, 2: 11}, stored((10, 1), (11, 2), (12, 2)))
    assert r.duplicates == [2] and r.mismatched == []


def test_a_reset_stream_reusing_sequences_is_found() -> None:
    # The store was lost: the stream restarted at 1 and seq 1 now holds another message.
    r = reconcile({1: 1, 2: 2, 3: 1}, stored((1, 3)))
    assert r.mismatched == [1, 2]
    assert r.reused == [1]
    assert r.examples[0] == {"workload_seq": 1, "acked_stream_seq": 1, "stream_seq_now_holds": 3}


def test_out_of_order_messages_are_counted() -> None:
    r = reconcile({}, stored((1, 2), (2, 1), (3, 3)))
    assert r.out_of_order == 1


def test_stream_holes() -> None:
    assert StreamState(1, 10, 10, 0).holes == 0
    assert StreamState(1, 10, 8, 2).holes == 2
    assert StreamState(0, 0, 0, 0).holes == 0


def test_subject_token() -> None:
    assert subject_token("nats-leader loss.x*") == "nats-leader_loss_x_"
