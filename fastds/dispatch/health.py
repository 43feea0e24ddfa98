"""Destination health: the OpenSIPS dispatcher state machine, sans-IO
(OpenSIPS modules/dispatcher/dispatch.c: ds_set_state, ds_check_timer, ds_options_callback).

Owns which destinations are probed when, and what probe replies and traffic failures do to
their state: 0 active, 1 inactive (administrative: never probed nor changed by failures),
2 probing (probed every interval until a 200 or a FASTDS_PING_REPLY_CODES code);
FASTDS_PROBING_THRESHOLD failures move active to probing; with `confirm`
(FASTDS_CONFIRM_FAILURES) a traffic failure of a destination that answered meanwhile counts
only once a probe fails too (docs/architecture.md §9). Time enters as `now`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from fastds.dispatch.sets import Destination
from fastds.dispatch.state import DestinationState

ACTIVE, INACTIVE, PROBING = DestinationState.ACTIVE, DestinationState.INACTIVE, DestinationState.PROBING
CONFIRM_GAP_S = 1.0  # between two probes sent to confirm a destination's traffic failures


@dataclasses.dataclass(frozen=True)
class StateChange:
    destination: Destination
    slot: int
    old: DestinationState
    new: DestinationState
    reason: str

    def log_line(self) -> str:
        d = self.destination
        return f"set {d.set_id} {d.uri} {self.old.label} -> {self.new.label} ({self.reason})"


@dataclasses.dataclass(frozen=True)
class FailureDismissed:
    """Traffic failures that a probe answered alive did not confirm: one log line."""
    destination: Destination
    reasons: tuple[str, ...]
    code: int

    def log_line(self) -> str:
        d = self.destination
        return (f"set {d.set_id} {d.uri} stays active: {len(self.reasons)} traffic failure(s) "
                f"({', '.join(sorted(set(self.reasons)))}) not confirmed, {self.code} to probe")


@dataclasses.dataclass(frozen=True)
class ProbeFailed:
    """Why a destination's probes fail, said once per state and reason (a destination that
    stays probing, or stays active below the threshold, is not otherwise logged)."""
    destination: Destination
    state: DestinationState
    outcome: str

    def log_line(self) -> str:
        d = self.destination
        return f"set {d.set_id} {d.uri} stays {self.state.label}: probe failed ({self.outcome})"


class Tracked:
    __slots__ = ("destination", "slot", "state", "failures", "next_probe", "probing_now", "stored", "unconfirmed",
                 "store_before", "confirming_since", "probe_failure_told")

    def __init__(self, destination: Destination, slot: int, state: int, failures: int, stored: int):
        self.destination = destination
        self.slot = slot
        self.state = DestinationState(state)
        self.failures = failures
        self.next_probe = 0.0
        self.probing_now = False
        self.stored = stored  # the state the store holds, as far as fastds knows
        self.unconfirmed: list[str] = []  # traffic failures waiting for the probe that confirms them
        # what the store held before another node's change, which that node writes (maybe not yet)
        self.store_before: int | None = None
        self.confirming_since = -CONFIRM_GAP_S  # when the last probe to confirm failures went out
        self.probe_failure_told: str | None = None  # the probe failure last logged in this state


class Health:
    def __init__(self, threshold: int, probing_mode: int, reply_codes: frozenset[int], interval_s: float,
                 confirm: bool = False):
        self.threshold = threshold
        self.confirm = confirm
        self.probing_mode = probing_mode
        self.alive_codes = frozenset(reply_codes) | {200}
        self.interval_s = interval_s
        self.tracked: dict[int, Tracked] = {}  # by destination id
        self.probes_here: Callable[[int], bool] = lambda dest_id: True  # a cluster shares the probing out

    def load(self, destinations: list[tuple[Destination, int]], now: float, inherit: bool,
             runtime: dict[int, int] | None = None) -> tuple[dict[int, int], list[StateChange]]:
        """Track a new generation's (destination, slot) pairs; with `inherit`, runtime
        state and failure counts of destinations still present carry over (OpenSIPS
        inherit_state) -- except where the store's state changed since fastds last read
        or wrote it: that is an operator's edit, and it wins (OpenSIPS #3059 asked for it).
        runtime: states by destination id that a previous prober left in shared memory
        (a respawned prober starts from them). Returns the state to publish per id, and
        a StateChange for each destination the reload moved (to be logged like any other)."""
        previous = self.tracked
        runtime = runtime or {}
        self.tracked = {}
        changes = []
        for destination, slot in destinations:
            old = previous.get(destination.id)
            if old is not None and inherit and destination.state in (old.stored, old.store_before):
                state, failures = old.state, old.failures
            else:
                state, failures = runtime.get(destination.id, destination.state), 0
            tracked = self.tracked[destination.id] = Tracked(destination, slot, state, failures, destination.state)
            if old is not None and inherit and destination.state == old.store_before != old.stored:
                tracked.stored, tracked.store_before = old.stored, old.store_before  # its origin's write still due
            tracked.next_probe = now  # probe right away, then every interval
            if old is not None and old.state != state:
                reason = "set in the store, reloaded" if inherit else "reloaded without inherit_state"
                changes.append(StateChange(destination, slot, old.state, state, reason))
        return {dest_id: t.state for dest_id, t in self.tracked.items()}, changes

    def unstored(self) -> list[tuple[int, int]]:
        """(destination id, state) of every runtime state the store does not hold yet."""
        return [(dest_id, t.state) for dest_id, t in self.tracked.items() if t.state != t.stored]

    def stored(self, dest_id: int, state: int) -> None:
        """The prober wrote `state` to the store."""
        tracked = self.tracked.get(dest_id)
        if tracked is not None:
            tracked.stored = state

    def _probed(self, tracked: Tracked) -> bool:
        if tracked.state == INACTIVE:
            return False
        return (bool(tracked.unconfirmed) or tracked.state == PROBING or self.probing_mode == 1
                or tracked.destination.probe_mode == 1)

    def _probed_here(self, tracked: Tracked) -> bool:
        """Probed, and by this node: the one the cluster gives it to, or the one that
        holds failures to confirm."""
        return self._probed(tracked) and (bool(tracked.unconfirmed) or self.probes_here(tracked.destination.id))

    def due(self, now: float) -> list[Tracked]:
        """Destinations to probe now (each at most once in flight); schedules the next."""
        found = []
        for tracked in self.tracked.values():
            if tracked.next_probe <= now and not tracked.probing_now and self._probed_here(tracked):
                tracked.probing_now = True
                tracked.next_probe = now + self.interval_s
                if tracked.unconfirmed:
                    tracked.confirming_since = now
                found.append(tracked)
        return found

    def next_deadline(self) -> float | None:
        deadlines = [t.next_probe for t in self.tracked.values() if self._probed_here(t) and not t.probing_now]
        return min(deadlines) if deadlines else None

    def _set(self, tracked: Tracked, state: int, reason: str) -> StateChange | None:
        if tracked.state == state:
            return None
        change = StateChange(tracked.destination, tracked.slot, tracked.state, DestinationState(state), reason)
        tracked.state = change.new
        tracked.probe_failure_told = None
        return change

    def _failure(self, tracked: Tracked, reason: str) -> StateChange | None:
        if tracked.state == INACTIVE:
            return None  # "already inactive": failures do not touch an administratively disabled one
        tracked.failures = min(tracked.failures + 1, self.threshold)
        if tracked.state == ACTIVE and tracked.failures >= self.threshold:
            return self._set(tracked, PROBING, reason)
        return None

    def probe_result(self, dest_id: int, code: int | None,
                     outcome: str | None = None) -> StateChange | FailureDismissed | ProbeFailed | None:
        """A probe's final reply code, or None for a failure (`outcome` says which: a timeout
        by default). A probe that was confirming traffic failures counts those (not itself)
        when it fails, dismisses them when not. A failure that changes no state is told once
        per state and outcome (ProbeFailed)."""
        tracked = self.tracked.get(dest_id)
        if tracked is None:
            return None  # the destination left in a reload
        tracked.probing_now = False
        unconfirmed, tracked.unconfirmed = tracked.unconfirmed, []
        outcome = outcome or ("probe timeout" if code is None else f"{code} to probe")
        if code in self.alive_codes:
            tracked.failures = 0
            if tracked.state == INACTIVE:
                return None
            change = self._set(tracked, ACTIVE, outcome)
            return change if change is not None or not unconfirmed else FailureDismissed(
                tracked.destination, tuple(unconfirmed), code)
        change = None
        for reason in unconfirmed or [None]:
            change = self._failure(tracked, outcome if reason is None else f"{reason}, confirmed by {outcome}") or change
        if change is not None:
            tracked.probe_failure_told = outcome  # the change's own line says it
            return change
        if tracked.state == INACTIVE or tracked.probe_failure_told == outcome:
            return None
        tracked.probe_failure_told = outcome
        return ProbeFailed(tracked.destination, tracked.state, outcome)

    def traffic_failure(self, dest_id: int, reason: str, answering: bool = False, count: int = 1, *,
                        now: float) -> StateChange | None:
        """A worker's report (ds_mark_dst "p") of `count` failures (a worker coalesces them,
        fastds/procs/reports.py): failover code or local 408 on live traffic; `answering`: the
        destination answered meanwhile (with `confirm`, probe it first). No more than the
        threshold of them count: that many take an active destination to probing."""
        tracked = self.tracked.get(dest_id)
        if tracked is None:
            return None
        count = min(count, self.threshold)
        if self.confirm and answering and tracked.state == ACTIVE:
            room = self.threshold - len(tracked.unconfirmed)
            tracked.unconfirmed.extend([reason] * min(count, room))
            if not tracked.probing_now:  # due at once, or CONFIRM_GAP_S after the last confirming probe
                tracked.next_probe = min(tracked.next_probe, max(now, tracked.confirming_since + CONFIRM_GAP_S))
            return None
        change = None
        for _ in range(count):
            change = self._failure(tracked, reason) or change
        return change

    def set_state(self, dest_id: int, state: int, reason: str) -> StateChange | None:
        """An operator's change (ds_set_state); a new active state clears nothing else."""
        tracked = self.tracked.get(dest_id)
        if tracked is None:
            return None
        if state == ACTIVE:
            tracked.next_probe = 0.0
        return self._set(tracked, state, reason)

    def apply_remote(self, dest_id: int, state: int, reason: str) -> StateChange | None:
        """A change another node of the cluster made and writes to the store itself: counted
        as stored, and a reload that reads the store before that write still inherits it."""
        tracked = self.tracked.get(dest_id)
        if tracked is None:
            return None
        if tracked.store_before is None:
            tracked.store_before = tracked.stored
        tracked.stored = state
        tracked.failures, tracked.unconfirmed = 0, []
        if state == ACTIVE:
            tracked.next_probe = 0.0
        return self._set(tracked, state, reason)

    def mark_probing(self, dest_id: int, reason: str) -> StateChange | None:
        """MI `ds_set_state p`, as OpenSIPS does it: the request counts as one failure
        (probing only at the threshold); on an inactive destination it is ignored and the
        inactive flag is then cleared, so the destination ends active (OpenSIPS ds_set_state)."""
        tracked = self.tracked.get(dest_id)
        if tracked is None:
            return None
        if tracked.state == INACTIVE:
            tracked.next_probe = 0.0
            return self._set(tracked, ACTIVE, reason)
        return self._failure(tracked, reason)
