"""Throw-away TLS material for the fake homeservers, made with the openssl command line tool."""

import subprocess
from pathlib import Path


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost; returns (certificate, key).

    The certificate doubles as the CA bundle the service trusts through SSL_CERT_FILE. The IP
    subjectAltName matters: the service verifies IP literals against the certificate's IP entries.
    """
    cert, key = directory / "homeserver.crt", directory / "homeserver.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=lkjwt-fcgi e2e homeserver",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True)
    return cert, key
