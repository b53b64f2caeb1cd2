"""A reader of online features for the canaries: the client's view of the feature server.

Each operation is one POST /get-online-features for every canary, compared with the
offline truth read once when the workload starts (the truth does not change in a drill):
- every value equal to the truth -> ok;
- a wrong or null value, an HTTP error or a refused connection -> fail (a plain exception);
- no answer within `timeout` -> unknown (OpUnknown).
Reads change nothing, so "acknowledged writes" are read as the canary values verified:
`read_back` returns every sequence number if the canaries are served correctly now and
none if they are not (the values verified during the drill are no longer served).
"""

from __future__ import annotations

from collections.abc import Collection

from drillrunner.core.actions import workload
from drillrunner.core.errors import ActionFailed
from drillrunner.core.units import Duration
from drillrunner.core.waiting import WaitTimeout, poll_until
from drillrunner.engine.context import RunContext
from drillrunner.engine.history import OpUnknown
from drillrunner.services.feast import canary, http
from drillrunner.services.feast.canary import Truth
from drillrunner.services.feast.ops import feast_ops

READ_BACK_TIMEOUT = 10.0


class OnlineReads:
    def __init__(self, base_url: str, truth: Truth, timeout: float) -> None:
        self.base_url = base_url
        self.truth = truth
        self.timeout = timeout

    def check(self) -> list[canary.Mismatch]:
        """The mismatches of one read; raises on HTTP errors and timeouts."""
        body = http.online_features(self.base_url, tuple(self.truth), self.timeout)
        return canary.compare(self.truth, canary.parse_response(body))

    def write(self, seq: int) -> None:
        try:
            wrong = self.check()
        except http.FeastTimeout as exc:
            raise OpUnknown(str(exc)) from None
        except (http.FeastHttpError, http.FeastUnavailable) as exc:
            raise ActionFailed(str(exc)) from None
        if wrong:
            raise ActionFailed(f"{len(wrong)} of {canary.value_count(self.truth)} canary "
                               f"values wrong, e.g. {wrong[0].describe()}")

    def correct_now(self) -> bool:
        try:
            return not self.check()
        except (http.FeastTimeout, http.FeastHttpError, http.FeastUnavailable):
            return False

    def read_back(self, seqs: Collection[int]) -> set[int]:
        if not seqs:
            return set()
        try:  # the server may still be settling after a restore
            poll_until(self.correct_now, timeout=READ_BACK_TIMEOUT, interval=0.2,
                       what="the canaries to be served correctly")
        except WaitTimeout:
            return set()
        return set(seqs)

    def close(self) -> None:
        return None


@workload("feast.online_reads")
def online_reads(ctx: RunContext, timeout: Duration = 1.0) -> OnlineReads:
    """POST /get-online-features for the canaries and compare with the offline truth;
    `timeout` bounds each request."""
    ops = feast_ops(ctx.target)
    return OnlineReads(ops.base_url(), ops.offline_truth(), timeout)
