"""The certificate expiry collector, on a certificate made with openssl for the test."""

import subprocess
import time

from prometheus_client import CollectorRegistry

from datasentinel.engine.metrics.certificates import CertificateExpiry, not_after


def test_the_expiry_of_a_certificate_file_and_none_for_garbage(tmp_path):
    cert = tmp_path / "c.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(tmp_path / "c.key"), "-out", str(cert), "-days", "10",
         "-subj", "/CN=t"],
        check=True, capture_output=True,
    )  # fmt: skip
    assert abs(not_after(cert) - (time.time() + 10 * 86400)) < 120
    registry = CollectorRegistry()
    registry.register(CertificateExpiry(cert))
    name = "datasentinel_tls_certificate_expiry_timestamp_seconds"
    assert registry.get_sample_value(name) == not_after(cert)
    cert.write_text("not a certificate")
    assert not_after(cert) is None and registry.get_sample_value(name) is None
