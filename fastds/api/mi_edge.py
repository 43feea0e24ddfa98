"""OpenSIPS's permissions and pike MI commands, over fastds's trusted sources and flood limit.

Owns address_reload, address_dump, subnet_dump (permissions, OpenSIPS 3.4 mi.c and
hash.c shapes: {"Partitions": [{"name", "Destinations": [{grp, ip, mask, port, proto,
pattern, context_info}]}]}, or {"part", "Destinations"} with a partition; rows of one
address in address_dump with mask "32"/"128", shorter masks in subnet_dump with the mask
written as an address, as OpenSIPS keeps them in two tables), and pike_list ({"IPs":
[...]}, merged over the workers) and pike_rm (ip; "Bad IP" 500, "Match not found" 404 for
an IP no worker blocks), so opensips-cp's Permissions tool and opensips-cli work.
`ask(op, **fields)` asks the prober (fastds/procs/control.py).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from typing import Any

from fastds.api.mi_params import PARTITION, MiError, string_param
from fastds.api.snapshot import Snapshot

PARTITION_RECIPES = [(), ("partition",)]


class EdgeCommands:
    def __init__(self, snapshot: Callable[[], Snapshot], ask: Callable[..., Awaitable[dict[str, Any]]]):
        self.snapshot = snapshot
        self.ask = ask
        self.commands = {
            "address_reload": (PARTITION_RECIPES, self.address_reload),
            "address_dump": (PARTITION_RECIPES, self.address_dump),
            "subnet_dump": (PARTITION_RECIPES, self.subnet_dump),
            "pike_list": ([()], self.pike_list),
            "pike_rm": ([("ip",)], self.pike_rm),
        }

    async def address_reload(self, params: dict[str, Any]) -> str:
        if "partition" in params and string_param(params, "partition") != PARTITION:
            raise MiError(400, "Trusted table reload failed")
        reply = await self.ask("reload", inherit=True)  # the address table is reloaded with the destinations
        if not reply.get("ok"):
            raise MiError(400, f"failed to reload partition  {PARTITION}!")
        return "OK"

    def _dump(self, params: dict[str, Any], hosts: bool) -> dict[str, Any]:
        rows = [self._entry(row) for row in self.snapshot().addresses if _is_host(row) == hosts]
        if "partition" in params:
            if string_param(params, "partition") != PARTITION:
                raise MiError(404, "No such partition")
            return {"part": PARTITION, "Destinations": rows}
        return {"Partitions": [{"name": PARTITION, "Destinations": rows}]}

    async def address_dump(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._dump(params, hosts=True)

    async def subnet_dump(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._dump(params, hosts=False)

    @staticmethod
    def _entry(row: dict[str, Any]) -> dict[str, Any]:
        network = ipaddress.ip_network(f"{row['ip']}/{row['mask']}", strict=False)
        mask = str(network.prefixlen) if _is_host(row) else str(network.netmask)
        return {"grp": row["grp"], "ip": row["ip"], "mask": mask, "port": row["port"], "proto": row["proto"],
                "pattern": row["pattern"], "context_info": row["context_info"]}

    async def pike_list(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"IPs": [blocked.ip for blocked in self.snapshot().blocked]}

    async def pike_rm(self, params: dict[str, Any]) -> str:
        text = string_param(params, "ip")
        try:
            ip = str(ipaddress.ip_address(text.strip()))
        except ValueError:
            raise MiError(500, "Bad IP") from None
        if all(blocked.ip != ip for blocked in self.snapshot().blocked):
            raise MiError(404, "Match not found")
        reply = await self.ask("unblock", ip=ip)
        if not reply.get("ok"):
            raise MiError(500, f"ERROR {reply.get('error')}")
        return "OK"


def _is_host(row: dict[str, Any]) -> bool:
    return row["mask"] == ipaddress.ip_address(row["ip"]).max_prefixlen
