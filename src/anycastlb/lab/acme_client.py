"""The ACME lab's two clients, run inside the client namespace: ``python -m anycastlb.lab.acme_client``.

``order``: what cert-manager does for a Certificate with an HTTP-01 issuer, with certbot's ``acme``
library: register an account, order the domain, put each token's key authorization where the node
serves ``/.well-known/acme-challenge/<token>`` (cert-manager's solver), answer the challenge, wait
for the authorization to be valid, finalize with a CSR and download the chain; then fetch the root
the ACME server issues under (pebble's management API ``/roots/0``). ``probe``: a TLS client that
connects to the VIP with SNI = the domain and verifies the chain and the name against that root.

Each prints one JSON object on stdout; a failure exits 1 with the ACME server's or the TLS
library's words on stderr. The ACME server's own certificate is trusted through REQUESTS_CA_BUNDLE.
"""

import argparse
import datetime
import hashlib
import json
import os
import socket
import ssl
import sys
import time
from pathlib import Path
from typing import Any

import requests
from acme import challenges, client, crypto_util, errors, messages
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from josepy.jwa import ES256
from josepy.jwk import JWKEC

__all__ = ["main", "order", "probe"]

_PEM = serialization.Encoding.PEM


def _new_key_pem() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(_PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _leaf_sha256(chain_pem: bytes) -> str:
    leaf = x509.load_pem_x509_certificates(chain_pem)[0]
    return hashlib.sha256(leaf.public_bytes(serialization.Encoding.DER)).hexdigest()


def _dns_names(certificate: x509.Certificate) -> list[str]:
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return names.get_values_for_type(x509.DNSName)


def order(directory_url: str, roots_url: str, domain: str, webroot: Path, out: Path) -> dict[str, Any]:
    """Obtain a certificate for ``domain`` by HTTP-01; writes key.pem, fullchain.pem, root.pem."""
    started = time.monotonic()
    account_key = JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    net = client.ClientNetwork(account_key, alg=ES256, user_agent="anycastlb-lab-acme")
    acme = client.ClientV2(client.ClientV2.get_directory(directory_url, net), net)
    acme.new_account(messages.NewRegistration.from_data(terms_of_service_agreed=True))
    key_pem = _new_key_pem()
    pending = acme.new_order(crypto_util.make_csr(key_pem, [domain]))
    tokens = []
    for authorization in pending.authorizations:
        challenge = next(
            (c for c in authorization.body.challenges if isinstance(c.chall, challenges.HTTP01)), None
        )
        if challenge is None:
            offered = [c.chall.typ for c in authorization.body.challenges]
            raise RuntimeError(f"the ACME server offers no http-01 challenge for {domain} (only {offered})")
        response, validation = challenge.response_and_validation(account_key)
        path = webroot / challenge.chall.path.lstrip("/")  # .well-known/acme-challenge/<token>
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(validation)
        tokens.append(challenge.chall.encode("token"))
        acme.answer_challenge(challenge, response)
    deadline = datetime.datetime.now() + datetime.timedelta(seconds=30)
    done = acme.poll_and_finalize(pending, deadline)
    out.mkdir(parents=True, exist_ok=True)
    (out / "key.pem").write_bytes(key_pem)
    (out / "fullchain.pem").write_text(done.fullchain_pem)
    root = requests.get(roots_url, timeout=10)
    root.raise_for_status()
    (out / "root.pem").write_text(root.text)
    leaf = x509.load_pem_x509_certificates(done.fullchain_pem.encode())[0]
    return {
        "domain": domain,
        "tokens": tokens,
        "san": _dns_names(leaf),
        "issuer": leaf.issuer.rfc4514_string(),
        "leaf_sha256": _leaf_sha256(done.fullchain_pem.encode()),
        "chain_length": len(x509.load_pem_x509_certificates(done.fullchain_pem.encode())),
        "seconds": round(time.monotonic() - started, 3),
    }


def probe(address: str, port: int, domain: str, root: Path, timeout: float = 5.0) -> dict[str, Any]:
    """Connect to ``address:port`` with SNI ``domain``; verify the chain and name against ``root``."""
    context = ssl.create_default_context(cafile=str(root))  # CERT_REQUIRED, check_hostname
    with (
        socket.create_connection((address, port), timeout=timeout) as raw,
        context.wrap_socket(raw, server_hostname=domain) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
        version = tls.version()
        tls.sendall(f"GET / HTTP/1.1\r\nHost: {domain}\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := tls.recv(65536):
            answer += chunk
    if der is None:
        raise RuntimeError(f"{address}:{port} sent no certificate")
    return {
        "verified": True,  # wrap_socket raised otherwise
        "tls_version": version,
        "san": _dns_names(x509.load_der_x509_certificate(der)),
        "leaf_sha256": hashlib.sha256(der).hexdigest(),
        "body": answer.split(b"\r\n\r\n", 1)[-1].decode(errors="replace").strip(),
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m anycastlb.lab.acme_client")
    commands = parser.add_subparsers(dest="command", required=True)
    ordering = commands.add_parser("order", help="obtain a certificate by HTTP-01")
    ordering.add_argument("--directory", required=True, help="the ACME directory URL")
    ordering.add_argument("--roots", required=True, help="where the issuing root is served (PEM)")
    ordering.add_argument("--domain", required=True)
    ordering.add_argument("--webroot", required=True, type=Path, help="the node's challenge root")
    ordering.add_argument("--out", required=True, type=Path, help="where key, chain and root go")
    probing = commands.add_parser("probe", help="verify the certificate served at ADDRESS:PORT")
    probing.add_argument("--address", required=True)
    probing.add_argument("--port", type=int, default=443)
    probing.add_argument("--domain", required=True)
    probing.add_argument("--root", required=True, type=Path)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "order":
            result = order(args.directory, args.roots, args.domain, args.webroot, args.out)
        else:
            result = probe(args.address, args.port, args.domain, args.root)
    except (errors.Error, messages.Error, requests.RequestException, OSError, RuntimeError) as error:
        bundle = os.environ.get("REQUESTS_CA_BUNDLE", "unset")
        why = f"{type(error).__name__}: {error}"
        print(f"{args.command} failed: {why} (REQUESTS_CA_BUNDLE={bundle})", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
