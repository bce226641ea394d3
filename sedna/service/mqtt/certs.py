"""Throwaway TLS files for a broker on 127.0.0.1: a CA and a server certificate it signed.

Tests and benchmarks run mosquitto with a TLS listener and point the gateway at the CA
with ``MQTT_TLS_CA``; nothing here is meant for production certificates. The files are
made with the ``cryptography`` package when it is importable, else with the ``openssl``
command; :func:`make_tls_files` raises :class:`RuntimeError` naming both when neither
is there. Keys are EC P-256 and are written with mode 0600.
"""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TlsFiles:
    """PEM files: the CA certificate, and the server certificate with its key."""

    ca: Path
    cert: Path
    key: Path


def make_tls_files(directory: Path, name: str = "ca", hosts: tuple[str, ...] = ("127.0.0.1", "localhost")) -> TlsFiles:
    """A fresh CA ``{name}.crt`` and a server certificate for ``hosts`` in ``directory`` (valid for one day)."""
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(directory / f"{name}.crt", directory / f"{name}-server.crt", directory / f"{name}-server.key")
    try:
        import cryptography  # noqa: F401
    except ImportError:
        if shutil.which("openssl") is None:
            raise RuntimeError("cannot make TLS test certificates: neither the 'cryptography' package "
                               "(pip install cryptography) nor the 'openssl' command is available") from None
        _with_openssl(files, name, hosts)
    else:
        _with_cryptography(files, name, hosts)
    files.key.chmod(0o600)
    return files


def _with_cryptography(files: TlsFiles, name: str, hosts: tuple[str, ...]) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"sedna test {name}")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])).issuer_name(ca_name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    files.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))


def _with_openssl(files: TlsFiles, name: str, hosts: tuple[str, ...]) -> None:
    ca_key = files.ca.with_suffix(".key")
    san = ",".join(("IP:" if _is_ip(h) else "DNS:") + h for h in hosts)
    ext = files.cert.with_suffix(".ext")
    ext.write_text(f"subjectAltName={san}\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n")
    csr = files.cert.with_suffix(".csr")
    for args in (
        ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
         "-subj", f"/CN=sedna test {name}", "-keyout", str(ca_key), "-out", str(files.ca)],
        ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", f"/CN={hosts[0]}",
         "-keyout", str(files.key), "-out", str(csr)],
        ["x509", "-req", "-in", str(csr), "-CA", str(files.ca), "-CAkey", str(ca_key), "-CAcreateserial",
         "-days", "1", "-extfile", str(ext), "-out", str(files.cert)],
    ):
        subprocess.run(["openssl", *args], check=True, capture_output=True)
    ca_key.chmod(0o600)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
