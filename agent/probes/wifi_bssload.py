"""The 802.11 BSS Load element (element ID 11), parsed by hand (scapy has no class for it).

Body (5 octets, little-endian; IEEE 802.11-2020 §9.4.2.27)::

    station count (u16) | channel utilization (u8) | available admission capacity (u16)

Channel utilization is the share of time the AP sensed the primary channel busy, scaled so
that 255 means 100 %: ``pct = value / 255 × 100``. Admission capacity is in units of
32 µs/s. The element is optional: many APs never send it, which is *not advertised*, not 0.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

BSS_LOAD_ID = 11


@dataclass(frozen=True)
class BssLoad:
    station_count: int
    utilisation_raw: int
    admission_capacity: int | None = None

    @property
    def utilisation_pct(self) -> float:
        return round(self.utilisation_raw / 255 * 100, 1)


def parse_bss_load(body: bytes) -> BssLoad:
    """The element body (without ID and length); ValueError naming a bad length."""
    if len(body) != 5:
        raise ValueError(f"BSS Load element has length {len(body)}, expected 5")
    stations, util, capacity = struct.unpack("<HBH", body)
    return BssLoad(stations, util, capacity)


def iter_elements(ies: bytes) -> Iterator[tuple[int, bytes]]:
    """(element ID, body) for each information element in a raw IE blob.

    Stops with ValueError at an element whose length runs past the end of the blob (the
    data comes from the air and must not be trusted).
    """
    pos = 0
    while pos < len(ies):
        if pos + 2 > len(ies):
            raise ValueError(f"information elements end inside a header at byte {pos}")
        eid, length = ies[pos], ies[pos + 1]
        end = pos + 2 + length
        if end > len(ies):
            raise ValueError(f"element {eid} at byte {pos} claims {length} bytes, "
                             f"only {len(ies) - pos - 2} remain")
        yield eid, ies[pos + 2:end]
        pos = end


def find_bss_load(ies: bytes) -> BssLoad | None:
    """The BSS Load in an IE blob, None if the AP does not send one."""
    for eid, body in iter_elements(ies):
        if eid == BSS_LOAD_ID:
            return parse_bss_load(body)
    return None


def utilisation_consistent(raw: int, shown_pct: float) -> bool:
    """True when ``shown_pct`` is ``raw``/255 as a percentage, truncated or rounded
    (netsh prints ``45 (17 %)``: 45/255 = 17.6 %). Used to recognise the utilisation line
    of a localised netsh whose labels classprobe does not know."""
    exact = raw / 255 * 100
    return 0 <= raw <= 255 and (int(exact) == int(shown_pct) or round(exact) == shown_pct)
