"""Battery health: the full-charge capacity as a share of the design capacity.

An old laptop whose battery holds half its design charge dies in the second lesson; the
percentage alone does not show that. Each OS has its own source:

- Linux: ``/sys/class/power_supply/BAT*/energy_full`` and ``energy_full_design`` (µWh), or
  ``charge_full`` / ``charge_full_design`` (µAh) on drivers that report charge. Several
  batteries (ThinkPads with two) are summed. Peripheral batteries (``scope`` = Device: a
  mouse) are not the laptop's and are left out.
- Windows: ``powercfg /batteryreport /xml /output FILE``: ``<DesignCapacity>`` and
  ``<FullChargeCapacity>`` (mWh) of each ``Batteries/Battery``. The report also holds the
  computer name and battery serial numbers: only the two capacities (and the cycle count)
  are read, and the file is deleted.
- macOS: ``ioreg -rc AppleSmartBattery``: ``"DesignCapacity"`` and ``"AppleRawMaxCapacity"``
  (mAh). On Apple silicon ``"MaxCapacity"`` is a percentage (100), so it is used as mAh only
  when ``AppleRawMaxCapacity`` is absent and it is above 100 (Intel Macs). Newer macOS puts
  the figures inside ``"BatteryData" = {...}``; that dict is read when the top level lacks
  them.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from agent.probes.device_cmd import CommandError, Runner
from agent.probes.results import ResultBuilder, flag, value
from agent.wire import ProbeResult


@dataclass(frozen=True)
class BatteryHealth:
    full: float
    design: float
    unit: str
    method: str
    cycles: int | None = None
    count: int = 1

    @property
    def health_pct(self) -> float:
        return round(self.full / self.design * 100.0, 1)


HealthOrReason = tuple[BatteryHealth | None, str | None]


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def linux_battery_health(sys_root: Path = Path("/sys")) -> HealthOrReason:
    """Health of the system batteries under ``sys_root/class/power_supply``."""
    base = sys_root / "class" / "power_supply"
    try:
        supplies = sorted(p for p in base.iterdir() if p.is_dir())
    except OSError:
        return None, f"{base} is not readable"
    full = design = 0.0
    unit = ""
    cycles: list[int] = []
    count = 0
    for supply in supplies:
        if _read(supply / "type") != "Battery" or _read(supply / "scope") == "Device":
            continue
        if _read(supply / "present") == "0":
            continue
        for kind, this_unit in (("energy", "µWh"), ("charge", "µAh")):
            f = _number(_read(supply / f"{kind}_full"))
            d = _number(_read(supply / f"{kind}_full_design"))
            if f is not None and d:
                if unit and unit != this_unit:
                    return None, (f"batteries report different units ({unit} and "
                                  f"{this_unit}); not combined")
                unit = this_unit
                full += f
                design += d
                count += 1
                cycle = _number(_read(supply / "cycle_count"))
                if cycle:  # 0 means "not reported" on many drivers
                    cycles.append(int(cycle))
                break
    if count == 0:
        return None, f"no battery under {base} reports full and design capacity"
    return BatteryHealth(full, design, unit, "sysfs power_supply full/full_design",
                         sum(cycles) if len(cycles) == count else None, count), None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_battery_report(xml_text: str) -> HealthOrReason:
    """Capacities from ``powercfg /batteryreport /xml`` output::

        <BatteryReport xmlns="http://schemas.microsoft.com/battery/2012">
          <Batteries><Battery> ... <DesignCapacity>56002</DesignCapacity>
            <FullChargeCapacity>32696</FullChargeCapacity><CycleCount>612</CycleCount>

    Only ``Batteries/Battery`` children count: ``RuntimeEstimates`` has elements with the
    same names that hold durations.
    """
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as exc:
        return None, f"battery report is not valid XML: {exc}"
    if _local(root.tag) != "BatteryReport":
        return None, f"not a battery report (root element {_local(root.tag)!r})"
    batteries = [b for top in root if _local(top.tag) == "Batteries"
                 for b in top if _local(b.tag) == "Battery"]
    if not batteries:
        return None, "the battery report lists no battery (a desktop)"
    full = design = 0.0
    cycles: list[int] = []
    for battery in batteries:
        fields = {_local(child.tag): (child.text or "").strip() for child in battery}
        f, d = _number(fields.get("FullChargeCapacity")), _number(fields.get("DesignCapacity"))
        if f is None or not d:
            return None, ("the battery report has no usable DesignCapacity/FullChargeCapacity "
                          f"(got {fields.get('DesignCapacity')!r}/"
                          f"{fields.get('FullChargeCapacity')!r})")
        full += f
        design += d
        c = _number(fields.get("CycleCount"))
        if c:
            cycles.append(int(c))
    return BatteryHealth(full, design, "mWh", "powercfg /batteryreport",
                         sum(cycles) if len(cycles) == len(batteries) else None,
                         len(batteries)), None


def windows_battery_health(runner: Runner, tmp_dir: Path | None = None) -> HealthOrReason:
    """Run ``powercfg /batteryreport /xml`` into a temporary file, parse it, delete it."""
    with tempfile.TemporaryDirectory(dir=tmp_dir) as tmp:
        report = Path(tmp) / "battery-report.xml"
        try:
            out = runner(["powercfg", "/batteryreport", "/xml", "/output", str(report)])
        except CommandError as exc:
            return None, str(exc)
        if not out.ok:
            return None, f"powercfg /batteryreport failed: {out.first_line()}"
        try:
            text = report.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            return None, f"powercfg wrote no report at {report.name}: {exc.strerror}"
    return parse_battery_report(text)


_IOREG_LINE = re.compile(r'^\s*"(?P<key>[^"]+)"\s*=\s*(?P<val>.+?)\s*$')
_IOREG_DICT_ITEM = re.compile(r'"(?P<key>[^"]+)"=(?P<val>-?\d+)')


def parse_ioreg_battery(text: str) -> HealthOrReason:
    """Capacities from ``ioreg -rc AppleSmartBattery``::

        +-o AppleSmartBattery  <class AppleSmartBattery, ...>
            {
              "DesignCapacity" = 5103
              "AppleRawMaxCapacity" = 4387
              "MaxCapacity" = 100
              "CycleCount" = 212
    """
    if "AppleSmartBattery" not in text:
        return None, "ioreg lists no AppleSmartBattery (a Mac without a battery)"
    top: dict[str, str] = {}
    nested: dict[str, str] = {}
    for line in text.splitlines():
        match = _IOREG_LINE.match(line)
        if not match:
            continue
        key, val = match["key"], match["val"]
        top.setdefault(key, val)
        if key == "BatteryData" and val.startswith("{"):
            nested = {m["key"]: m["val"] for m in _IOREG_DICT_ITEM.finditer(val)}

    def pick(*names: str, source: dict[str, str]) -> tuple[float | None, str | None]:
        for name in names:
            n = _number(source.get(name))
            if n is not None:
                return n, name
        return None, None

    design, _ = pick("DesignCapacity", source=top)
    full, full_key = pick("AppleRawMaxCapacity", source=top)
    if full is None:
        max_cap, _ = pick("MaxCapacity", source=top)
        if max_cap is not None and max_cap > 100:
            full, full_key = max_cap, "MaxCapacity"
    if design is None or full is None:
        design = design if design is not None else pick("DesignCapacity", source=nested)[0]
        if full is None:
            full, full_key = pick("FullChargeCapacity", "NominalChargeCapacity", source=nested)
            full_key = f"BatteryData.{full_key}" if full_key else None
    if not design or full is None:
        return None, ("ioreg shows no usable DesignCapacity and full-charge capacity "
                      "(AppleRawMaxCapacity / MaxCapacity in mAh / BatteryData)")
    cycles = _number(top.get("CycleCount") or nested.get("CycleCount"))
    return BatteryHealth(full, design, "mAh", f"ioreg AppleSmartBattery {full_key}/"
                         "DesignCapacity", int(cycles) if cycles else None), None


def macos_battery_health(runner: Runner) -> HealthOrReason:
    try:
        out = runner(["ioreg", "-rc", "AppleSmartBattery"])
    except CommandError as exc:
        return None, str(exc)
    if not out.ok:
        return None, f"ioreg failed: {out.first_line()}"
    return parse_ioreg_battery(out.stdout)


def battery(state: object | None, health: HealthOrReason | None = None) -> ProbeResult:
    """The battery result from ``psutil.sensors_battery()`` (None: no battery) and the
    OS-specific health reading."""
    r = ResultBuilder("battery")
    if state is None:
        return r.skipped("no battery found (psutil.sensors_battery() returned None)")
    percent = getattr(state, "percent", None)
    plugged = getattr(state, "power_plugged", None)
    if percent is None:
        return r.skipped("the OS reports a battery without a charge level")
    r.add(value("battery_pct", "psutil.sensors_battery", round(float(percent), 1)))
    if plugged is None:
        r.note("battery_plugged not measured: the OS does not say if mains is connected")
    else:
        r.add(flag("battery_plugged", "psutil.sensors_battery", bool(plugged)))
    if health is not None:
        found, reason = health
        if found is None:
            r.note(f"battery_health_pct not measured: {reason}")
        else:
            method = (f"{found.method}: {found.full:g}/{found.design:g} {found.unit}"
                      + (f", {found.count} batteries" if found.count > 1 else ""))
            r.add(value("battery_health_pct", method, found.health_pct))
            if found.cycles is not None:
                r.add(value("battery_cycles", found.method, found.cycles))
    return r.ok()
