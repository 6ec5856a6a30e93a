"""Run classprobe's probes inside the lab's classroom namespace and read their JSON.

- :func:`cli` runs ``python -m classprobe.cli probe ... --json`` in ``cls``, as a user
  would, and returns the ``results`` list (the wire format's ``to_jsonable`` form).
- :func:`icmp` runs the latency probe's ICMP part (``agent.probes.latency.icmp_result``,
  the code behind ``classprobe probe latency``'s ``icmp`` result) with an echo interval
  the CLI does not expose yet (``LatencyOptions.icmp_interval_s``): loss needs hundreds
  of echoes, at the CLI's fixed 0.1 s that would be most of a CI minute.
  ``python -m tests.lab.probe_runner icmp HOST COUNT INTERVAL_S TIMEOUT_S`` is its body.
- :func:`by_metric` indexes a result's measurements: ``{(metric, stat): (value, method)}``.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

from tests.lab.procs import REPO_ROOT

if TYPE_CHECKING:
    from tests.lab.netlab import Lab

Result = dict[str, Any]
AS_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
"""Prefix that runs a command as uid/gid 65534 with no supplementary groups."""


class ProbeRunError(AssertionError):
    """The probe process did not print the JSON it should have; carries its output."""


def _results(argv: list[str], returncode: int, stdout: str, stderr: str) -> list[Result]:
    try:
        return list(json.loads(stdout)["results"])
    except (ValueError, KeyError) as exc:
        raise ProbeRunError(f"{argv!r} exited {returncode} without JSON results: {exc}\n"
                            f"stdout: {stdout[-1500:]}\nstderr: {stderr[-3000:]}") from exc


def cli(lab: Lab, probe: str, *args: str, timeout: float = 120,
        env: dict[str, str] | None = None, prefix: list[str] | None = None) -> list[Result]:
    """``classprobe probe PROBE ARGS --json`` in ``cls`` (``prefix``: e.g. AS_NOBODY)."""
    argv = [*(prefix or []), sys.executable, "-m", "classprobe.cli", "probe", probe, *args,
            "--json"]
    out = lab.run("cls", argv, cwd=REPO_ROOT, timeout=timeout, env=env)
    return _results(argv, out.returncode, out.stdout, out.stderr)


def icmp(lab: Lab, host: str, count: int, interval_s: float, timeout_s: float,
         prefix: list[str] | None = None) -> Result:
    """The latency probe's ``icmp`` result for ``host``, ``count`` echoes ``interval_s`` apart."""
    argv = [*(prefix or []), sys.executable, "-m", "tests.lab.probe_runner", "icmp", host,
            str(count), str(interval_s), str(timeout_s)]
    out = lab.run("cls", argv, cwd=REPO_ROOT, timeout=count * (interval_s + timeout_s) + 60)
    [result] = _results(argv, out.returncode, out.stdout, out.stderr)
    return result


def by_metric(result: Result) -> dict[tuple[str, str], tuple[Any, str]]:
    """``{(metric, stat): (value or text, method)}`` of one result's measurements."""
    return {(m["metric"], m.get("stat") or "value"):
            (m["text"] if m.get("text") is not None else m.get("value"), m["method"])
            for m in result.get("measurements", [])}


def one(results: list[Result], probe: str, target: str | None = None) -> Result:
    """The single result of ``probe`` (for ``target``) in ``results``."""
    found = [r for r in results
             if r["probe"] == probe and (target is None or r.get("target") == target)]
    if len(found) != 1:
        listed = [(r["probe"], r.get("target"), r["status"]) for r in results]
        raise AssertionError(f"expected one {probe!r} result for {target!r}, got {listed}")
    return found[0]


def _icmp_main(host: str, count: str, interval_s: str, timeout_s: str) -> int:
    import socket

    from agent.probes.latency import LatencyOptions, icmp_result, icmp_unavailable
    from agent.wire import to_jsonable

    opts = LatencyOptions(samples=int(count), timeout_s=float(timeout_s),
                          icmp_interval_s=float(interval_s))
    addresses: list[tuple[int, tuple[Any, ...]]] = [(socket.AF_INET, (host, 0))]
    result = icmp_result(host, addresses, None, opts, icmp_unavailable(opts.icmp_opener))
    print(json.dumps({"results": [to_jsonable(result)]}))
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "icmp":
        sys.exit(_icmp_main(*sys.argv[2:]))
    sys.exit("usage: python -m tests.lab.probe_runner icmp HOST COUNT INTERVAL_S TIMEOUT_S")
