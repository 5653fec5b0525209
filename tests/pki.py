"""Throw-away certificates for the security tests, made with openssl in a temporary folder
(never committed): two CAs, server certificates for 127.0.0.1/localhost, client certificates;
and server certificates with chosen dates (expired, not yet valid, about to expire), made with
``cryptography`` since openssl 3.0's ``x509 -req`` only counts days from now."""

from __future__ import annotations

import ipaddress
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _key(name: str, cwd: Path) -> None:
    _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", f"{name}.key", cwd=cwd)


def make_ca(name: str, cwd: Path) -> None:
    _key(name, cwd)
    _openssl(
        "req", "-x509", "-new", "-key", f"{name}.key", "-out", f"{name}.pem",
        "-days", "2", "-subj", f"/CN={name}", cwd=cwd,
    )  # fmt: skip


def make_leaf(name: str, ca: str, cwd: Path, *, server: bool) -> None:
    """A certificate signed by ``ca``: a server's (SAN localhost, 127.0.0.1) or a client's."""
    _key(name, cwd)
    _openssl("req", "-new", "-key", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}",
             cwd=cwd)  # fmt: skip
    usage = "serverAuth" if server else "clientAuth"
    extensions = f"extendedKeyUsage={usage}\n"
    if server:
        extensions += "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
    (cwd / f"{name}.ext").write_text(extensions)
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
        "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext",
        cwd=cwd,
    )  # fmt: skip


def make_dated_server(name: str, ca: str, cwd: Path, not_before: datetime, not_after: datetime):
    """A server certificate like ``make_leaf``'s, signed by ``ca``, valid between the dates."""
    ca_cert = x509.load_pem_x509_certificate((cwd / f"{ca}.pem").read_bytes())
    ca_key = serialization.load_pem_private_key((cwd / f"{ca}.key").read_bytes(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    (cwd / f"{name}.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (cwd / f"{name}.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


@dataclass(frozen=True)
class PKI:
    dir: Path

    def pem(self, name: str) -> Path:
        return self.dir / f"{name}.pem"

    def key(self, name: str) -> Path:
        return self.dir / f"{name}.key"

    def read(self, name: str) -> bytes:
        return self.pem(name).read_bytes()

    def read_key(self, name: str) -> bytes:
        return self.key(name).read_bytes()


def make_pki(directory: Path) -> PKI:
    """ca (server, client), other-ca (other-server, other-client); signed by ca as well:
    expired-server (2019-2020), future-server (from 2100) and long-server (valid for a year)."""
    directory.mkdir(parents=True, exist_ok=True)
    for ca, prefix in (("ca", ""), ("other-ca", "other-")):
        make_ca(ca, directory)
        make_leaf(f"{prefix}server", ca, directory, server=True)
        make_leaf(f"{prefix}client", ca, directory, server=False)
    now = datetime.now(UTC)
    dates = {
        "expired-server": (datetime(2019, 1, 1, tzinfo=UTC), datetime(2020, 1, 1, tzinfo=UTC)),
        "future-server": (datetime(2100, 1, 1, tzinfo=UTC), datetime(2101, 1, 1, tzinfo=UTC)),
        "long-server": (now - timedelta(days=1), now + timedelta(days=365)),
    }
    for name, (not_before, not_after) in dates.items():
        make_dated_server(name, "ca", directory, not_before, not_after)
    return PKI(directory)
