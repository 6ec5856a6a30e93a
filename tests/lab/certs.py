"""Certificates for the lab, made with trustme: the lab CA and a foreign "filter" CA.

The lab CA signs the far-side servers; its bundle is what a probe gets as
``--ca-bundle`` (the legitimate roots). The foreign CA stands for a school filter that
intercepts TLS: a probe trusting only the lab CA must see its certificates as not ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

LAB_CA_ORG = "classprobe lab CA"
FILTER_CA_ORG = "Lab Filter Ltd interception CA"


@dataclass(frozen=True)
class CertSet:
    """PEM files: ``ca_bundle`` (the CA certificate) and ``server_pem`` (key + chain)."""

    ca_bundle: Path
    server_pem: Path
    organisation: str
    identities: tuple[str, ...]


def make_certs(directory: Path, identities: list[str], organisation: str = LAB_CA_ORG,
               stem: str = "lab") -> CertSet:
    """A new CA named ``organisation`` and one server certificate for ``identities``.

    Identities may be DNS names (wildcards allowed) or IP addresses.
    """
    import trustme

    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name=organisation)
    leaf = ca.issue_cert(*identities)
    bundle = directory / f"{stem}-ca.pem"
    server = directory / f"{stem}-server.pem"
    ca.cert_pem.write_to_path(str(bundle))
    leaf.private_key_and_cert_chain_pem.write_to_path(str(server))
    return CertSet(bundle, server, organisation, tuple(identities))
