"""Progress of a run: a Rich live line on a terminal, plain timestamped lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import Any

from drillrunner.engine.runner import Phase


class Display:
    """Shows the scenario, the phase, the step and how long the current wait has lasted."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)
        self.live: Any = None
        self.scenario = ""
        self.text = ""
        self.since = time.monotonic()
        self.t0 = time.monotonic()

    def __enter__(self) -> Display:
        if self.console.is_terminal:
            from rich.live import Live

            self.live = Live(self, console=self.console, refresh_per_second=10, transient=True)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)

    def __rich__(self) -> str:
        elapsed = time.monotonic() - self.since
        return f"[bold]{self.scenario}[/] · {self.text} · [cyan]{elapsed:5.1f}s[/]"

    def phase(self, scenario: str, phase: Phase, detail: str = "") -> None:
        self.scenario, self.since = scenario, time.monotonic()
        self.text = f"{phase.value}{': ' + detail if detail else ''}"
        if self.live is None:
            print(f"[{time.monotonic() - self.t0:7.1f}s] {scenario}: {self.text}",
                  file=sys.stderr, flush=True)
        elif phase is Phase.DONE:
            self.console.print(f"{scenario}: [bold]{detail}[/]")
