"""Throw-away certificates for the security tests, made with openssl in a temporary folder
(never committed): two CAs, server certificates for 127.0.0.1/localhost, client certificates."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


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
    """ca (server, client), other-ca (other-server, other-client)."""
    directory.mkdir(parents=True, exist_ok=True)
    for ca, prefix in (("ca", ""), ("other-ca", "other-")):
        make_ca(ca, directory)
        make_leaf(f"{prefix}server", ca, directory, server=True)
        make_leaf(f"{prefix}client", ca, directory, server=False)
    return PKI(directory)
