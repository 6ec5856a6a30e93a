"""Which operating system, which build, and is it still supported by its vendor?

Windows: ``reg query "HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion"`` (recorded output
parsed by :func:`parse_reg_query`). The registry's ``ProductName`` still says "Windows 10"
on Windows 11, and Python 3.11's ``platform.release()`` says "10" there too, so the product
comes from the build number (22000 and later is Windows 11). macOS: ``sw_vers``. Linux:
``os-release`` (parsed in :mod:`agent.probes.device`) and the kernel release as the build.

End of support is looked up in :data:`WINDOWS_SUPPORT_END` / :data:`LINUX_SUPPORT_END`, which
hold only dates published by the vendor (source in the comment of each entry). Anything not
in the tables is *unknown* and reported as such, never guessed. Apple publishes no
end-of-support dates for macOS.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from agent.probes.device_cmd import CommandError, Runner

WINDOWS_CURRENT_VERSION_KEY = r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion"

_REG_VALUE = re.compile(r"^\s+(?P<name>\S.*?)\s{4}(?P<type>REG_[A-Z0-9_]+)(?:\s{4}(?P<data>.*))?$")


def parse_reg_query(text: str) -> dict[str, dict[str, str]]:
    """Parse ``reg query`` output into ``{key path: {value name: data}}``::

        HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion
            CurrentBuild    REG_SZ    22631
            UBR    REG_DWORD    0xd61

    ``REG_DWORD``/``REG_QWORD`` data stay as printed (``0xd61``); see :func:`reg_int`.
    Sub-key lines (a key path with no values) appear as keys with an empty dict.
    """
    out: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("HKEY_"):
            current = out.setdefault(line.strip(), {})
            continue
        match = _REG_VALUE.match(line)
        if match and current is not None:
            current[match["name"]] = (match["data"] or "").strip()
    return out


def reg_int(data: str | None) -> int | None:
    """A ``REG_DWORD`` as printed by ``reg`` (``0xd61``) or a decimal ``REG_SZ`` number."""
    if not data:
        return None
    try:
        return int(data, 16) if data.lower().startswith("0x") else int(data)
    except ValueError:
        return None


@dataclass(frozen=True)
class OsIdentity:
    name: str | None
    version: str | None
    build: str | None
    method: str
    family: str  # "windows" | "linux" | "macos" | other
    edition: str | None = None
    """Windows EditionID (Education, Professional…); support dates depend on it."""
    distro: str | None = None
    """Linux os-release ID (ubuntu, debian…)."""
    build_number: int | None = None
    """Windows CurrentBuild as a number."""


# Windows EditionID -> (marketing name, servicing class). The class decides which end date
# applies: Windows 11 gives Home/Pro-type editions 24 months and Enterprise/Education 36
# (Microsoft Lifecycle, "Windows 11 Home and Pro" / "Windows 11 Enterprise and Education").
_EDITIONS: dict[str, tuple[str, str]] = {
    "Core": ("Home", "consumer"),
    "CoreN": ("Home N", "consumer"),
    "CoreSingleLanguage": ("Home Single Language", "consumer"),
    "CoreCountrySpecific": ("Home China", "consumer"),
    "Professional": ("Pro", "consumer"),
    "ProfessionalN": ("Pro N", "consumer"),
    "ProfessionalEducation": ("Pro Education", "consumer"),
    "ProfessionalEducationN": ("Pro Education N", "consumer"),
    "ProfessionalWorkstation": ("Pro for Workstations", "consumer"),
    "ProfessionalWorkstationN": ("Pro for Workstations N", "consumer"),
    "Education": ("Education", "business"),
    "EducationN": ("Education N", "business"),
    "Enterprise": ("Enterprise", "business"),
    "EnterpriseN": ("Enterprise N", "business"),
    "EnterpriseS": ("Enterprise LTSC", "ltsc"),
    "EnterpriseSN": ("Enterprise N LTSC", "ltsc"),
}


def windows_product(build: int) -> str | None:
    """Product name from the build number (the registry's ProductName is unreliable)."""
    if build >= 22000:
        return "Windows 11"
    if build >= 10240:
        return "Windows 10"
    return {9600: "Windows 8.1", 9200: "Windows 8", 7601: "Windows 7",
            7600: "Windows 7"}.get(build)


def windows_identity_from_reg(values: dict[str, str]) -> OsIdentity | None:
    """OsIdentity from the CurrentVersion values; None when the build is missing."""
    build = reg_int(values.get("CurrentBuild") or values.get("CurrentBuildNumber"))
    if build is None:
        return None
    product = windows_product(build) or values.get("ProductName") or "Windows"
    edition_id = values.get("EditionID") or None
    edition_name = _EDITIONS.get(edition_id, (edition_id, ""))[0] if edition_id else None
    name = f"{product} {edition_name}" if edition_name else product
    version = values.get("DisplayVersion") or values.get("ReleaseId") or None
    ubr = reg_int(values.get("UBR"))
    return OsIdentity(name=name, version=version,
                      build=f"{build}.{ubr}" if ubr is not None else str(build),
                      method="reg query CurrentVersion", family="windows",
                      edition=edition_id, build_number=build)


def windows_identity(runner: Runner) -> tuple[OsIdentity | None, str | None]:
    """(identity, None) or (None, reason) from ``reg query`` of CurrentVersion."""
    try:
        out = runner(["reg", "query", WINDOWS_CURRENT_VERSION_KEY])
    except CommandError as exc:
        return None, str(exc)
    if not out.ok:
        return None, f"reg query CurrentVersion failed: {out.first_line()}"
    keys = parse_reg_query(out.stdout)
    values = next((v for k, v in keys.items() if k.lower().endswith("\\currentversion")), {})
    ident = windows_identity_from_reg(values)
    if ident is None:
        return None, "reg query CurrentVersion printed no CurrentBuild value"
    return ident, None


def parse_sw_vers(text: str) -> dict[str, str]:
    """``sw_vers`` output (``ProductName:\\tmacOS`` lines) as a dict."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, val = line.partition(":")
        if sep and key.strip():
            out[key.strip()] = val.strip()
    return out


def macos_identity(runner: Runner) -> tuple[OsIdentity | None, str | None]:
    try:
        out = runner(["sw_vers"])
    except CommandError as exc:
        return None, str(exc)
    values = parse_sw_vers(out.stdout)
    if not out.ok or "ProductVersion" not in values:
        return None, f"sw_vers printed no ProductVersion ({out.first_line()})"
    return OsIdentity(name=values.get("ProductName") or "macOS",
                      version=values["ProductVersion"], build=values.get("BuildVersion"),
                      method="sw_vers", family="macos"), None


@dataclass(frozen=True)
class SupportEnd:
    ends: date
    source: str


# Windows: (build, servicing class) -> end of servicing. Class "any" matches every edition.
# Sources: Microsoft Lifecycle pages (learn.microsoft.com/lifecycle/products/...), named per
# entry. Windows 10 22H2 ended for all editions on 2025-10-14 (paid Extended Security
# Updates are not detected, so an ESU-enrolled PC is still reported as out of support).
WINDOWS_SUPPORT_END: dict[tuple[int, str], SupportEnd] = {
    (7601, "any"): SupportEnd(date(2020, 1, 14), "Microsoft Lifecycle: Windows 7"),
    (9600, "any"): SupportEnd(date(2023, 1, 10), "Microsoft Lifecycle: Windows 8.1"),
    (19045, "consumer"): SupportEnd(date(2025, 10, 14),
                                    "Microsoft Lifecycle: Windows 10 Home and Pro"),
    (19045, "business"): SupportEnd(date(2025, 10, 14),
                                    "Microsoft Lifecycle: Windows 10 Enterprise and Education"),
    (14393, "ltsc"): SupportEnd(date(2026, 10, 13),
                                "Microsoft Lifecycle: Windows 10 Enterprise LTSB 2016"),
    (17763, "ltsc"): SupportEnd(date(2029, 1, 9),
                                "Microsoft Lifecycle: Windows 10 Enterprise LTSC 2019"),
    (19044, "ltsc"): SupportEnd(date(2027, 1, 12),
                                "Microsoft Lifecycle: Windows 10 Enterprise LTSC 2021"),
    (22000, "consumer"): SupportEnd(date(2023, 10, 10),
                                    "Microsoft Lifecycle: Windows 11 Home and Pro, 21H2"),
    (22000, "business"): SupportEnd(date(2024, 10, 8), "Microsoft Lifecycle: Windows 11 "
                                    "Enterprise and Education, 21H2"),
    (22621, "consumer"): SupportEnd(date(2024, 10, 8),
                                    "Microsoft Lifecycle: Windows 11 Home and Pro, 22H2"),
    (22621, "business"): SupportEnd(date(2025, 10, 14), "Microsoft Lifecycle: Windows 11 "
                                    "Enterprise and Education, 22H2"),
    (22631, "consumer"): SupportEnd(date(2025, 11, 11),
                                    "Microsoft Lifecycle: Windows 11 Home and Pro, 23H2"),
    (22631, "business"): SupportEnd(date(2026, 11, 10), "Microsoft Lifecycle: Windows 11 "
                                    "Enterprise and Education, 23H2"),
    (26100, "consumer"): SupportEnd(date(2026, 10, 13),
                                    "Microsoft Lifecycle: Windows 11 Home and Pro, 24H2"),
    (26100, "business"): SupportEnd(date(2027, 10, 12), "Microsoft Lifecycle: Windows 11 "
                                    "Enterprise and Education, 24H2"),
    (26100, "ltsc"): SupportEnd(date(2029, 10, 9),
                                "Microsoft Lifecycle: Windows 11 Enterprise LTSC 2024"),
}
WINDOWS_10_END = SupportEnd(date(2025, 10, 14), "Microsoft Lifecycle: Windows 10 (22H2 was the "
                            "last version; earlier versions ended before it)")

# Linux: (os-release ID, VERSION_ID) -> end of the distribution's free security support.
LINUX_SUPPORT_END: dict[tuple[str, str], SupportEnd] = {
    # Canonical: end of standard support for LTS releases (Ubuntu Pro/ESM not detected).
    ("ubuntu", "18.04"): SupportEnd(date(2023, 5, 31), "Canonical: Ubuntu 18.04 LTS end of "
                                    "standard support"),
    ("ubuntu", "20.04"): SupportEnd(date(2025, 5, 31), "Canonical: Ubuntu 20.04 LTS end of "
                                    "standard support"),
    # Debian LTS team (wiki.debian.org/LTS): end of Debian LTS for the release.
    ("debian", "10"): SupportEnd(date(2024, 6, 30), "Debian LTS: Debian 10 buster"),
    ("debian", "11"): SupportEnd(date(2026, 8, 31), "Debian LTS: Debian 11 bullseye"),
}


@dataclass(frozen=True)
class SupportStatus:
    ends: date | None
    supported: bool | None
    method: str
    unknown_reason: str | None = None


def support_status(ident: OsIdentity, today: date) -> SupportStatus:
    """The vendor support status of ``ident`` on ``today``, or why it is unknown."""
    label = " ".join(p for p in (ident.name, ident.version) if p) or "this OS"
    if ident.family == "windows" and ident.build_number is not None:
        cls = _EDITIONS.get(ident.edition or "", ("", ""))[1]
        end = (WINDOWS_SUPPORT_END.get((ident.build_number, "any"))
               or WINDOWS_SUPPORT_END.get((ident.build_number, cls)))
        if end is not None:
            return SupportStatus(end.ends, today <= end.ends, end.source)
        # Every Windows 10 version before 22H2 ended before 2025-10-14: the day is not in
        # the table, but "no longer supported" is certain after Windows 10's own end.
        if (10240 <= ident.build_number < 19045 and cls in ("consumer", "business")
                and today > WINDOWS_10_END.ends):
            return SupportStatus(None, False, WINDOWS_10_END.source)
        if not cls:
            return SupportStatus(None, None, "", f"end of support unknown for {label}: "
                                 f"edition {ident.edition or '(none)'} is not in the table")
        return SupportStatus(None, None, "", f"end of support unknown for {label} "
                             f"(build {ident.build_number} is not in the table)")
    if ident.family == "linux" and ident.distro:
        end = LINUX_SUPPORT_END.get((ident.distro, ident.version or ""))
        if end is not None:
            return SupportStatus(end.ends, today <= end.ends, end.source)
    if ident.family == "macos":
        return SupportStatus(None, None, "", f"end of support unknown for {label}: Apple "
                             "publishes no end-of-support dates")
    return SupportStatus(None, None, "", f"end of support unknown for {label} (not in "
                         "classprobe's table of vendor-published dates)")
