"""Just enough X.509 (DER) reading for the TLS check: names, the public key, fingerprints.

Standard library only: the agent does not need the ``cryptography`` package to say who
issued a certificate. The layout read (RFC 5280 §4.1)::

    Certificate  ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }
    TBSCertificate ::= SEQUENCE { [0] version OPTIONAL, serialNumber, signature,
                                  issuer Name, validity, subject Name,
                                  subjectPublicKeyInfo, ... }
    Name ::= SEQUENCE OF SET OF SEQUENCE { type OID, value ANY }

Names are rendered as RFC 4514 strings (most specific RDN first, ``,`` between RDNs,
``+`` inside a multi-valued RDN, special characters escaped), which is what
``cryptography``'s ``Name.rfc4514_string()`` gives for the usual attributes.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

SEQUENCE, SET, OID, CONTEXT_0 = 0x30, 0x31, 0x06, 0xA0

ATTRIBUTE_NAMES = {
    "2.5.4.3": "CN", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.9": "STREET",
    "2.5.4.10": "O", "2.5.4.11": "OU", "0.9.2342.19200300.100.1.25": "DC",
    "0.9.2342.19200300.100.1.1": "UID",
}
STRING_CODECS = {0x0C: "utf-8", 0x13: "ascii", 0x16: "ascii", 0x14: "latin-1",
                 0x1E: "utf-16-be", 0x1C: "utf-32-be", 0x1A: "ascii"}


class DerError(ValueError):
    """Bytes that are not the DER certificate we expected; the message says where."""


def read_tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the DER element at ``pos``."""
    if pos + 2 > len(data):
        raise DerError(f"truncated element at offset {pos}")
    tag, first = data[pos], data[pos + 1]
    start = pos + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or start + count > len(data):
            raise DerError(f"bad length at offset {pos}")
        length = int.from_bytes(data[start:start + count], "big")
        start += count
    end = start + length
    if end > len(data):
        raise DerError(f"element at offset {pos} runs past the end ({end} > {len(data)})")
    return tag, start, end


def children(data: bytes, start: int, end: int) -> list[tuple[int, int, int, int]]:
    """(tag, element start, content start, content end) of each element in a range."""
    out = []
    pos = start
    while pos < end:
        tag, cstart, cend = read_tlv(data, pos)
        out.append((tag, pos, cstart, cend))
        pos = cend
    return out


def decode_oid(body: bytes) -> str:
    if not body:
        raise DerError("empty OID")
    first = body[0]
    parts = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    value = 0
    for byte in body[1:]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(value)
            value = 0
    return ".".join(map(str, parts))


def escape_rfc4514(value: str) -> str:
    out = []
    for i, ch in enumerate(value):
        if ch in ',+"\\<>;' or (ch == "#" and i == 0) or (ch == " " and i in (0, len(value) - 1)):
            out.append("\\" + ch)
        elif ch == "\0":
            out.append("\\00")
        else:
            out.append(ch)
    return "".join(out)


def _attribute(data: bytes, start: int, end: int) -> str:
    items = children(data, start, end)
    if len(items) != 2 or items[0][0] != OID:
        raise DerError(f"bad name attribute at offset {start}")
    oid = decode_oid(data[items[0][2]:items[0][3]])
    tag, elem, vstart, vend = items[1]
    key = ATTRIBUTE_NAMES.get(oid, oid)
    codec = STRING_CODECS.get(tag)
    if codec is None:
        return f"{key}=#{data[elem:vend].hex()}"
    return f"{key}={escape_rfc4514(data[vstart:vend].decode(codec, errors='replace'))}"


def decode_name(data: bytes, start: int, end: int) -> str:
    """An RFC 4514 string of the Name whose SEQUENCE content is ``data[start:end]``."""
    rdns = []
    for tag, _elem, rstart, rend in children(data, start, end):
        if tag != SET:
            raise DerError(f"name component at offset {rstart} is not a SET")
        rdns.append("+".join(_attribute(data, a, b)
                             for t, _e, a, b in children(data, rstart, rend)
                             if t == SEQUENCE))
    return ",".join(reversed(rdns))


@dataclass(frozen=True)
class CertInfo:
    subject: str
    issuer: str
    spki_sha256_b64: str
    """SHA-256 of the DER SubjectPublicKeyInfo, base64 (the HPKP / ``pin-sha256`` form)."""
    cert_sha256_hex: str
    """SHA-256 of the whole DER certificate, lower-case hex (``openssl x509 -fingerprint``)."""

    @property
    def self_issued(self) -> bool:
        return self.subject == self.issuer


def parse_certificate(der: bytes) -> CertInfo:
    """Subject, issuer and fingerprints of a DER certificate; DerError if it is not one."""
    tag, start, end = read_tlv(der, 0)
    if tag != SEQUENCE:
        raise DerError("certificate is not a DER SEQUENCE")
    parts = children(der, start, end)
    if not parts or parts[0][0] != SEQUENCE:
        raise DerError("certificate has no tbsCertificate")
    fields = children(der, parts[0][2], parts[0][3])
    if fields and fields[0][0] == CONTEXT_0:
        fields = fields[1:]  # explicit version
    if len(fields) < 6:
        raise DerError(f"tbsCertificate has {len(fields)} fields, expected at least 6")
    issuer, subject, spki = fields[2], fields[4], fields[5]
    for name, item in (("issuer", issuer), ("subject", subject), ("subjectPublicKeyInfo", spki)):
        if item[0] != SEQUENCE:
            raise DerError(f"{name} is not a SEQUENCE (tag 0x{item[0]:02x})")
    spki_der = der[spki[1]:spki[3]]
    return CertInfo(
        subject=decode_name(der, subject[2], subject[3]),
        issuer=decode_name(der, issuer[2], issuer[3]),
        spki_sha256_b64=base64.b64encode(hashlib.sha256(spki_der).digest()).decode(),
        cert_sha256_hex=hashlib.sha256(der).hexdigest(),
    )
