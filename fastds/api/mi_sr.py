"""OpenSIPS's status/report MI commands: sr_get_status, sr_list_status, sr_list_reports,
sr_list_identifiers, with the shapes and errors of OpenSIPS 3.4 (status_report.c).

Owns shaping the groups into replies. Groups: "dispatcher" (from the prober,
fastds/dispatch/status_report.py) and "core" (identifier "main": running once a table is
published and every worker has written its counters row; computed here from shared
memory). A group is {"Name", "Identifiers": [{"Name", "Status", "Details", "Reports":
[{"Timestamp", "Log"}]}]}; Readiness is Status > 0, as OpenSIPS has it.
"""

from __future__ import annotations

import time
from typing import Any

from fastds.api.snapshot import Snapshot

RECIPES = {
    "sr_get_status": [("group",), ("group", "identifier")],
    "sr_list_status": [(), ("group",)],
    "sr_list_reports": [(), ("group",), ("group", "identifier")],
    "sr_list_identifiers": [(), ("group",)],
}


class SrNotFound(Exception):
    """A 404 MI error: "Group not found", "Identifier not found" ..."""


def core_group(snapshot: Snapshot) -> dict[str, Any]:
    ready = snapshot.generation > 0 and bool(snapshot.workers) and all(row["pid"] for row in snapshot.workers)
    main = {"Name": "main", "Status": 1 if ready else -1, "Details": "running" if ready else "initializing",
            "Reports": []}
    return {"Name": "core", "Identifiers": [main]}


def _group(groups: list[dict[str, Any]], name: str) -> dict[str, Any]:
    for group in groups:
        if group["Name"] == name:
            return group
    raise SrNotFound("Group not found")


def _status(identifier: dict[str, Any], with_name: bool) -> dict[str, Any]:
    item = {"Name": identifier["Name"]} if with_name else {}
    item.update({"Readiness": identifier["Status"] > 0, "Status": identifier["Status"]})
    if identifier["Details"]:
        item["Details"] = identifier["Details"]
    return item


def _reports(identifier: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"Timestamp": report["Timestamp"], "Date": time.ctime(report["Timestamp"]), "Log": report["Log"]}
            for report in identifier["Reports"]]


def sr_get_status(groups: list[dict[str, Any]], params: dict[str, str]) -> dict[str, Any]:
    """No identifier: the group's first (default) one; "all": every one aggregated."""
    identifiers = _group(groups, params["group"])["Identifiers"]
    name = params.get("identifier")
    if name == "all":
        ready = all(identifier["Status"] > 0 for identifier in identifiers)
        return {"Readiness": ready, "Status": 1 if ready else -1, "Details": "aggregated"}
    found = identifiers[0] if name is None else next((i for i in identifiers if i["Name"] == name), None)
    if found is None:
        raise SrNotFound("Identity not found")
    return _status(found, with_name=False)


def sr_list_status(groups: list[dict[str, Any]], params: dict[str, str]) -> list[dict[str, Any]]:
    if "group" in params:
        return [_status(identifier, True) for identifier in _group(groups, params["group"])["Identifiers"]]
    return [{"Name": group["Name"], "Identifiers": [_status(identifier, True) for identifier in group["Identifiers"]]}
            for group in groups]


def sr_list_reports(groups: list[dict[str, Any]], params: dict[str, str]) -> list[dict[str, Any]]:
    if "group" not in params:
        return [{"Name": group["Name"], "Identifiers": [{"Name": i["Name"], "Reports": _reports(i)}
                                                         for i in group["Identifiers"]]} for group in groups]
    identifiers = _group(groups, params["group"])["Identifiers"]
    if "identifier" not in params:
        return [{"Name": i["Name"], "Reports": _reports(i)} for i in identifiers]
    found = next((i for i in identifiers if i["Name"] == params["identifier"]), None)
    if found is None:
        raise SrNotFound("Identifier not found")
    return _reports(found)


def sr_list_identifiers(groups: list[dict[str, Any]], params: dict[str, str]) -> Any:
    if "group" in params:
        group = _group(groups, params["group"])
        return {"Group": group["Name"], "Identifiers": [i["Name"] for i in group["Identifiers"]]}
    return [{"Group": group["Name"], "Identifiers": [i["Name"] for i in group["Identifiers"]]} for group in groups]


COMMANDS = {"sr_get_status": sr_get_status, "sr_list_status": sr_list_status, "sr_list_reports": sr_list_reports,
            "sr_list_identifiers": sr_list_identifiers}
