"""``classprobe agent install`` / ``uninstall``: the agent as a service on each OS.

``paths`` (where config, spool and logs live), ``spec`` (what every service definition
shares), ``systemd`` / ``launchd`` / ``windows`` (each OS's files and commands as a
``plan.Plan``), ``plan`` (prints, stages or carries out a plan), ``logs`` (``agent run``'s
logging), ``cli`` (the two commands). Nothing here runs at import time.
"""
