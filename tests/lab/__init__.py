"""The network lab: namespaces, shaping, a delay/loss wire, far-side endpoints, filters.

See tests/lab/README.md; fixtures are in ``tests.lab.plugin``.
"""
