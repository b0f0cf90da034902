"""Machine types and their prices: the planner's user-editable price file, checked field by field.

Prices change and differ by region, contract and discount, so they live in a YAML file the user edits (the
shipped ``configs/prices.yaml`` is illustrative), never in code. Every entry names its source and date so a
cost figure can be traced to the price it used.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from ..exceptions import ConfigError

logger = logging.getLogger(__name__)

REQUIRED_FIELDS = ("name", "cores", "memory_gb", "price_per_hour")
DEFAULT_CURRENCY = "USD"
PRICE_FIX = "each machine needs name, cores, memory_gb and price_per_hour (see configs/prices.yaml)"


@dataclass(frozen=True)
class Machine:
    """One machine type. ``cores``: the vCPUs (hardware threads) a replica's threads may use."""

    name: str
    cores: int
    memory_gb: float
    price_per_hour: float
    provider: str | None = None
    region: str | None = None
    source: str | None = None
    date: str | None = None
    currency: str = DEFAULT_CURRENCY

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _number(entry: dict, field: str, where: str, integer: bool = False) -> float:
    value = entry[field]
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if (
        isinstance(value, bool)
        or not math.isfinite(number)
        or number <= 0
        or (integer and number != int(number))
    ):
        kind = "a positive whole number" if integer else "a positive number"
        raise ConfigError(f"{where}: {field} must be {kind}, got {value!r}", PRICE_FIX)
    return int(number) if integer else number


def parse_machines(data: Any, origin: str = "the price file") -> list[Machine]:
    """Machines from the parsed YAML (``{"machines": [...]}`` or a bare list); names the entry and field
    that is missing or wrong."""
    currency = DEFAULT_CURRENCY
    if isinstance(data, dict):
        currency = str(data.get("currency", DEFAULT_CURRENCY))
        data = data.get("machines")
    if not isinstance(data, list) or not data:
        raise ConfigError(f"{origin} lists no machines", "add a `machines:` list (see configs/prices.yaml)")
    machines, seen = [], set()
    for i, entry in enumerate(data, start=1):
        where = f"{origin}, machine #{i}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} is not a mapping of fields", PRICE_FIX)
        if entry.get("name"):
            where = f"{origin}, machine #{i} ({entry['name']})"
        missing = [f for f in REQUIRED_FIELDS if entry.get(f) in (None, "")]
        if missing:
            raise ConfigError(f"{where} is missing {', '.join(missing)}", PRICE_FIX)
        name = str(entry["name"])
        if name in seen:
            raise ConfigError(
                f"{where}: the name {name!r} appears twice", "give every machine type its own name"
            )
        seen.add(name)
        if not entry.get("source") or not entry.get("date"):
            logger.warning("%s has no source or date: its cost figures cannot be traced", where)
        machines.append(
            Machine(
                name=name,
                cores=int(_number(entry, "cores", where, integer=True)),
                memory_gb=_number(entry, "memory_gb", where),
                price_per_hour=_number(entry, "price_per_hour", where),
                provider=entry.get("provider"),
                region=entry.get("region"),
                source=entry.get("source"),
                date=str(entry["date"]) if entry.get("date") is not None else None,
                currency=str(entry.get("currency", currency)),
            )
        )
    return machines


def load_prices(path: str | os.PathLike[str]) -> list[Machine]:
    """The machine types of a price file (YAML)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(
            f"price file {p} not found", "pass --prices configs/prices.yaml or a copy with your own prices"
        )
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"price file {p} is not valid YAML: {exc}", PRICE_FIX) from exc
    return parse_machines(data, origin=str(p))
