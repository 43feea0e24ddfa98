"""The dispatcher's OpenSIPS status/report identifiers, kept by the prober (sans-IO).

Owns what opensips-cp's Status Report page and dashboard read through the sr_* MI
commands (OpenSIPS 3.4 status_report.c, modules/dispatcher): group "dispatcher", identifier "default" (the data: -2 no
data yet, -1 first load in progress, 1 loaded, 2 loaded and a reload in progress; the
reports of every load) and "default;events" (the last 200 state changes, one line each).
Wall-clock timestamps come in as arguments; the MI shapes are fastds/api/mi_sr.py's.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from typing import Any

from fastds.dispatch.health import StateChange

GROUP = "dispatcher"
DATA = "default"  # fastds has one partition; OpenSIPS names its first one "default"
EVENTS = "default;events"
NO_DATA, LOADING, READY, RELOADING = -2, -1, 1, 2
STATUS_DETAILS = {NO_DATA: "no data", LOADING: "loading data", READY: "data available",
                  RELOADING: "data available, reload in progress"}


@dataclasses.dataclass
class Identifier:
    status: int
    details: str | None
    reports: deque

    def as_json(self, name: str) -> dict[str, Any]:
        return {"Name": name, "Status": self.status, "Details": self.details,
                "Reports": [{"Timestamp": int(at), "Log": text} for at, text in self.reports]}


class StatusReport:
    def __init__(self):
        self.identifiers = {DATA: Identifier(NO_DATA, STATUS_DETAILS[NO_DATA], deque(maxlen=50)),
                            EVENTS: Identifier(READY, None, deque(maxlen=200))}

    def _data(self, status: int, report: str, at: float) -> None:
        data = self.identifiers[DATA]
        data.status, data.details = status, STATUS_DETAILS[status]
        data.reports.append((at, report))

    def loading(self, at: float) -> None:
        self._data(LOADING if self.identifiers[DATA].status in (NO_DATA, LOADING) else RELOADING,
                   "starting DB data loading", at)

    def loaded(self, destinations: int, discarded: int, at: float) -> None:
        self._data(READY, "DB data loading successfully completed", at)
        self.identifiers[DATA].reports.append((at, f"{destinations} destinations loaded ({discarded} discarded)"))

    def load_failed(self, at: float) -> None:
        data = self.identifiers[DATA]
        self._data(NO_DATA if data.status == LOADING else READY, "DB data loading failed, discarding", at)

    def state_changed(self, change: StateChange, at: float) -> None:
        self.identifiers[EVENTS].reports.append(
            (at, f"DESTINATION <{change.destination.uri}>, set {change.destination.set_id} switched to "
                 f"[{change.new.label}] due to {change.reason}"))

    def as_json(self) -> list[dict[str, Any]]:
        """The groups as the prober sends them to the API (fastds/procs/control.py)."""
        return [{"Name": GROUP, "Identifiers": [identifier.as_json(name)
                                                for name, identifier in self.identifiers.items()]}]
