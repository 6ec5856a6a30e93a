"""``classprobe`` entry point: dispatches to the agent's or the collector's CLI.

The agent CLI never imports the collector, so this dispatcher imports each side lazily:
a classroom PC with only the ``agent`` extra installed can run every agent command.
"""

from __future__ import annotations

import sys

AGENT_COMMANDS = {"agent", "probe", "flag"}
COLLECTOR_COMMANDS = {"collector", "report", "export", "profiles", "campaign", "compare"}

USAGE = """usage: classprobe COMMAND ...

commands:
  demo                      collector on SQLite + a local agent + a readiness report
  agent enroll|once|run     the classroom agent (run: the lesson-aware service)
  agent install|uninstall   register the agent as a service (systemd, launchd, Windows)
  flag [--note TEXT]        report a problem in this room now; this PC measures at once
  probe latency|bandwidth|path|device|load|wifi
                            run one probe by hand and print what it measured
  collector serve|create-site|admin-user|timetable|room-test|share|notify|...
                            run and administer the collector ('collector --help')
  report --site NAME        readiness verdicts for a site (text|json|html|csv)
  report verify FILE        check a signed report downloaded from a share link
  export --site NAME        raw measurements (csv|json)
  profiles add FILE|list    requirement profiles: add a supplier's, list them
  campaign create|list      named assessments of a site (profiles, time window)
  compare --site NAME --profile P --before C1 --after C2
                            per requirement: better / worse / no significant change

run 'classprobe COMMAND --help' for a command's options."""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in {"-h", "--help", "help"}:
        print(USAGE)
        return 0 if args else 2
    command = args[0]
    if command in AGENT_COMMANDS:
        from agent.cli import main as agent_main

        return agent_main(args)
    if command in COLLECTOR_COMMANDS:
        try:
            from collector.cli import main as collector_main
        except ImportError as exc:  # agent-only install
            print(
                f"classprobe {command}: the collector is not installed ({exc}); "
                "install classprobe[collector]",
                file=sys.stderr,
            )
            return 2
        return collector_main(args)
    if command == "demo":
        from classprobe.demo import main as demo_main

        return demo_main(args[1:])
    print(f"classprobe: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
