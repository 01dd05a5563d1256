"""The certificate pebble's own HTTPS APIs present: self-signed, for the client's address.

Pebble's ACME and management APIs speak only HTTPS and Debian ships no test certificate for them
(upstream's ``test/certs`` are not packaged), so the lab makes one per run; the ACME client trusts
exactly this certificate (REQUESTS_CA_BUNDLE). It has nothing to do with the certificates pebble
issues, which chain to a root pebble makes at start and serves at ``/roots/0``.
"""

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["write_api_certificate"]


def write_api_certificate(directory: Path, address: str) -> tuple[Path, Path]:
    """Write ``api-cert.pem`` and ``api-key.pem`` for ``address``; returns (certificate, key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pebble API (anycastlb ACME lab)")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(address))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "api-cert.pem", directory / "api-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path
