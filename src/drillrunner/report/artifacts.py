"""artifacts/: each member's log tail and the configuration it ran with, redacted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from drillrunner.evidence.redact import redact_text

LOG_LINES = 200


def collect(target: Any, bundle: Path) -> list[Path]:
    folder = bundle / "artifacts"
    folder.mkdir(exist_ok=True)
    written = []
    for dep in target.deployments():
        for member in dep.members():
            try:
                log = target.log_tail(member, LOG_LINES)
            except Exception as exc:
                log = f"(log unavailable: {type(exc).__name__}: {exc})"
            path = folder / f"{member.name}.log"
            path.write_text(redact_text(log) + "\n")
            written.append(path)
            for name, text in target.member_config(member).items():
                cpath = folder / f"{member.name}.{name}"
                cpath.write_text(redact_text(text))
                written.append(cpath)
    return written
