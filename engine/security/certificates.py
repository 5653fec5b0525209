"""The validity dates of the server certificate. gRPC serves whatever certificate it is given,
expired or not yet valid, and clients then only see a failed handshake; so the engine reads the
dates itself: such a certificate stops the start, is refused on rotation, and one close to its
end is warned about (``ENGINE_TLS_EXPIRY_WARNING_DAYS``) and exported as days left."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509

from datasentinel.engine.errors import EngineError

SECONDS_PER_DAY = 86400.0


class CertificateError(EngineError):
    """The certificate file holds no certificate this engine can read."""


class CertificateDatesError(EngineError):
    """The certificate has expired or is not valid yet: serving it would fail every handshake."""


@dataclass(frozen=True)
class Validity:
    """When the served (leaf) certificate is valid, and whose it is."""

    path: Path
    subject: str
    not_before: datetime
    not_after: datetime

    def days_left(self, now: datetime | None = None) -> float:
        """Days until it expires; negative once it has."""
        now = now or datetime.now(UTC)
        return (self.not_after - now).total_seconds() / SECONDS_PER_DAY

    def describe(self) -> str:
        return f"{self.path} ({self.subject}, valid until {_date(self.not_after)})"


def read_validity(pem: bytes, path: Path) -> Validity:
    """The dates of the first certificate in ``pem`` (a chain starts with the server's own)."""
    try:
        leaf = x509.load_pem_x509_certificates(pem)[0]
    except ValueError as exc:
        raise CertificateError(
            f"ENGINE_TLS_CERT_FILE {path} holds no readable PEM certificate ({exc})"
        ) from None
    subject = leaf.subject.rfc4514_string() or "no subject"
    return Validity(path, subject, leaf.not_valid_before_utc, leaf.not_valid_after_utc)


def check_dates(validity: Validity, now: datetime | None = None) -> None:
    """Raises CertificateDatesError, saying what to do, unless ``now`` is within its dates."""
    now = now or datetime.now(UTC)
    if now > validity.not_after:
        raise CertificateDatesError(
            f"the TLS certificate ENGINE_TLS_CERT_FILE {validity.path} ({validity.subject}) "
            f"expired on {_date(validity.not_after)}: every client would fail its handshake; "
            "renew it (for Compose: FORCE=1 ./scripts/docker/makeSecrets.sh)"
        )
    if now < validity.not_before:
        raise CertificateDatesError(
            f"the TLS certificate ENGINE_TLS_CERT_FILE {validity.path} ({validity.subject}) is "
            f"not valid until {_date(validity.not_before)}: check this machine's clock, or the "
            "certificate's dates"
        )


def _date(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")
