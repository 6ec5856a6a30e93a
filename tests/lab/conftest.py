"""The lab's fixtures (defined in ``tests.lab.plugin``) for the lab's own tests."""

from tests.lab.plugin import (  # noqa: F401 (fixtures are found by name)
    lab,
    lab_certs,
    lab_collector,
    lab_endpoints,
    lab_required,
    lab_session,
    make_lab,
)
