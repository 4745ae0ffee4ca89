"""Local HTTPS: a certificate authority of our own, the server's certificate, and TLS contexts.

``serve --tls`` needs a certificate that clients can verify for ``localhost``, ``127.0.0.1`` and
``::1``. Like mkcert and trustme, we create a small CA once per user and issue the server's
(leaf) certificate from it; the user trusts the CA once (``webhook-inspector ca`` says how) and
every later leaf is trusted too.

Files, in ``data_dir()/ca/`` (never beside ``--db``: a database is often copied or shared, the
CA key must not travel with it):

* ``ca.pem`` — the CA certificate (public; ``GET /ca.pem`` serves it),
* ``ca-key.pem`` — its private key, mode 0600,
* ``server.pem`` / ``server-key.pem`` — the leaf and its key (0600), re-issued when it nears
  expiry, when the names asked for change, or when the CA was replaced.

The directory is 0700. Generation holds a lock file, so two servers starting at once (or
``ca --path`` beside a server) cannot interleave writes; files are written whole and renamed.

Keys are ECDSA P-256: quick to make and accepted by every current client. This module has no
web dependency; the server (``server.py``) and the delivery engine both use it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import os
import socket
import ssl
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import data_dir

DEFAULT_NAMES = ("localhost", "127.0.0.1", "::1")
CA_DAYS = 3650
LEAF_DAYS = 365  # well under the 825 days Apple accepts for certificates from user-added CAs
RENEW_BEFORE = dt.timedelta(days=30)
HANDSHAKE_TIMEOUT = 10.0
ENVIRON_KEY = "inspector.tls"  # the TLS version, set by our own TLS listener


class TLSError(RuntimeError):
    """A certificate or key that cannot be used; the message names the file and the flag."""


@dataclass(frozen=True)
class CAFiles:
    dir: Path
    cert_path: Path
    key_path: Path


@dataclass
class ServerTLS:
    """What a TLS listener needs: the certificate in use and a ready server context."""

    cert_path: Path
    key_path: Path
    ca_path: Path | None  # None with the user's own certificate
    names: list[str]
    context: ssl.SSLContext


# -- paths ---------------------------------------------------------------------------------------
def ca_dir(base: Path | None = None) -> Path:
    return (base or data_dir()) / "ca"


def ca_files(base: Path | None = None) -> CAFiles:
    d = ca_dir(base)
    return CAFiles(d, d / "ca.pem", d / "ca-key.pem")


def ca_cert_path(base: Path | None = None) -> Path:
    """Where the CA certificate is (or will be); does not create it."""
    return ca_files(base).cert_path


def leaf_paths(base: Path | None = None) -> tuple[Path, Path]:
    d = ca_dir(base)
    return d / "server.pem", d / "server-key.pem"


# -- names ---------------------------------------------------------------------------------------
def parse_names(value: str | Iterable[str] | None) -> list[str]:
    """``--tls-name`` values: comma- or space-separated host names and IP addresses."""
    if value is None:
        return []
    items = [value] if isinstance(value, str) else list(value)
    out: list[str] = []
    for item in items:
        for part in item.replace(",", " ").split():
            name = part.strip().strip("[]").rstrip(".").lower()
            if name and name not in out:
                out.append(name)
    return out


def wanted_names(config: Any) -> list[str]:
    """The leaf's names: the loopback defaults, a specific ``--host``, then ``--tls-name``."""
    names = list(DEFAULT_NAMES)
    host = (getattr(config, "host", "") or "").strip("[]").lower()
    if host and host not in ("0.0.0.0", "::"):
        names.append(host)
    names += parse_names(getattr(config, "tls_name", None))
    seen: list[str] = []
    for n in names:
        key = _canonical(n)
        if key not in [_canonical(s) for s in seen]:
            seen.append(n)
    return seen


def _canonical(name: str) -> str:
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name.lower()


def _general_names(names: Iterable[str]) -> list[Any]:
    from cryptography import x509

    out: list[Any] = []
    for n in names:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            try:
                out.append(x509.DNSName(n.encode("idna").decode("ascii")))
            except UnicodeError:
                raise TLSError(f"--tls-name {n!r} is not a valid host name or IP address"
                               ) from None
    return out


def _cert_names(cert: Any) -> set[str]:
    from cryptography import x509

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return ({str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
            | {d.lower() for d in san.get_values_for_type(x509.DNSName)})


def _wanted_set(names: Iterable[str]) -> set[str]:
    out = set()
    for n in names:
        try:
            out.add(str(ipaddress.ip_address(n)))
        except ValueError:
            out.add(n.encode("idna").decode("ascii").lower())
    return out


# -- files ---------------------------------------------------------------------------------------
def _secure_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    if os.name == "posix":
        os.chmod(path, 0o700)


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write whole-or-nothing with ``mode`` from the first byte (never readable by others)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _tighten(path: Path, mode: int) -> None:
    """Repair a key file's mode if someone loosened it (we own it: it is in our data dir)."""
    if os.name == "posix" and path.exists() and (path.stat().st_mode & 0o777) != mode:
        with contextlib.suppress(OSError):
            os.chmod(path, mode)


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    _secure_dir(directory)
    try:
        import fcntl
    except ImportError:  # Windows: generation races are unlikely; writes are still atomic
        yield
        return
    fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _load_cert(path: Path) -> Any:
    from cryptography import x509

    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return None


def _load_key(path: Path) -> Any:
    from cryptography.hazmat.primitives import serialization

    try:
        return serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return None


def _same_key(cert: Any, key: Any) -> bool:
    from cryptography.hazmat.primitives import serialization

    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return cert.public_key().public_bytes(*fmt) == key.public_key().public_bytes(*fmt)


def _fresh(cert: Any) -> bool:
    return cert.not_valid_after_utc - RENEW_BEFORE > _now() >= cert.not_valid_before_utc


def _key_pem(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert_pem(cert: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM)


def _owner() -> str:
    try:
        import getpass

        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        user = "user"
    return f"{user}@{socket.gethostname()}"


# -- the CA --------------------------------------------------------------------------------------
def ensure_ca(base: Path | None = None) -> CAFiles:
    """The local CA, created on first use and replaced only when unusable or nearly expired."""
    files = ca_files(base)
    with _locked(files.dir):
        _ensure_ca_locked(files)
    return files


def _ensure_ca_locked(files: CAFiles) -> tuple[Any, Any]:
    cert, key = _load_cert(files.cert_path), _load_key(files.key_path)
    if cert is not None and key is not None and _same_key(cert, key) and _fresh(cert):
        _tighten(files.key_path, 0o600)
        return cert, key
    return _create_ca(files)


def _create_ca(files: CAFiles) -> tuple[Any, Any]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "webhook-inspector local CA"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, _owner()[:64]),
        x509.NameAttribute(NameOID.COMMON_NAME, f"webhook-inspector {_owner()}"[:64]),
    ])
    now = _now()
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(files.key_path, _key_pem(key), 0o600)  # key first: a cert without it is useless
    _write(files.cert_path, _cert_pem(cert), 0o644)
    return cert, key


# -- the server's certificate --------------------------------------------------------------------
def ensure_leaf(names: Iterable[str] = DEFAULT_NAMES, base: Path | None = None
                ) -> tuple[Path, Path]:
    """The server certificate for ``names`` from the local CA: reused while it is fresh, issued
    by the current CA and for exactly these names; re-issued otherwise."""
    names = list(names)
    files = ca_files(base)
    cert_path, key_path = leaf_paths(base)
    with _locked(files.dir):
        ca_cert, ca_key = _ensure_ca_locked(files)
        leaf, key = _load_cert(cert_path), _load_key(key_path)
        if not (leaf is not None and key is not None and _same_key(leaf, key)
                and _fresh(leaf) and _issued_by(leaf, ca_cert)
                and _cert_names(leaf) == _wanted_set(names)):
            _issue_leaf(names, ca_cert, ca_key, cert_path, key_path)
        _tighten(key_path, 0o600)
    return cert_path, key_path


def _issued_by(leaf: Any, ca_cert: Any) -> bool:
    try:
        leaf.verify_directly_issued_by(ca_cert)
    except Exception:  # noqa: BLE001 - any mismatch means re-issue
        return False
    return True


def _issue_leaf(names: list[str], ca_cert: Any, ca_key: Any, cert_path: Path,
                key_path: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    not_after = min(now + dt.timedelta(days=LEAF_DAYS), ca_cert.not_valid_after_utc)
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "webhook-inspector"),
            x509.NameAttribute(NameOID.COMMON_NAME, names[0][:64]),
        ]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(_general_names(names)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write(key_path, _key_pem(key), 0o600)
    _write(cert_path, _cert_pem(cert), 0o644)


# -- contexts ------------------------------------------------------------------------------------
def server_context(cert_path: str | Path, key_path: str | Path | None = None) -> ssl.SSLContext:
    """A server context: TLS 1.2 or newer, HTTP/1.1 by ALPN (the servers speak no HTTP/2)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cert_path), str(key_path) if key_path else None)
    with contextlib.suppress(NotImplementedError):
        ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def client_context(extra_ca: str | Path | None = None) -> ssl.SSLContext:
    """What our own outbound requests trust: the system store, plus the local CA when it exists
    (it is never created here), plus ``extra_ca`` if given."""
    ctx = ssl.create_default_context()
    local = ca_cert_path()
    for path in (local, extra_ca):
        if path is not None and Path(path).is_file():
            with contextlib.suppress(ssl.SSLError, OSError):
                ctx.load_verify_locations(cafile=str(path))
    return ctx


def prepare(config: Any) -> ServerTLS:
    """The certificate ``serve --tls`` will use: the user's own (``--tls-cert``/``--tls-key``)
    or one from the local CA for :func:`wanted_names`. Raises :class:`TLSError`."""
    cert, key = getattr(config, "tls_cert", None), getattr(config, "tls_key", None)
    if key and not cert:
        raise TLSError("--tls-key needs --tls-cert (the certificate for that key)")
    if cert:
        for flag, p in (("--tls-cert", cert), ("--tls-key", key)):
            if p and not Path(p).is_file():
                raise TLSError(f"{flag} {p}: no such file")
        try:
            ctx = server_context(cert, key)
        except (ssl.SSLError, OSError) as exc:
            why = str(getattr(exc, "reason", None) or exc).split(" (_ssl.c", 1)[0]
            raise TLSError(f"cannot use --tls-cert {cert}"
                           + (f" with --tls-key {key}" if key else "")
                           + f": {why}; expected a PEM certificate and its unencrypted private "
                             "key") from None
        loaded = _load_cert(Path(cert))
        names = sorted(_cert_names(loaded)) if loaded is not None else []
        return ServerTLS(Path(cert), Path(key or cert), None, names, ctx)
    names = wanted_names(config)
    cert_path, key_path = ensure_leaf(names)
    return ServerTLS(cert_path, key_path, ca_cert_path(), names,
                     server_context(cert_path, key_path))


# -- what a request came over --------------------------------------------------------------------
def tls_version(environ: dict[str, Any]) -> str | None:
    """The TLS version of this request (``TLSv1.3``), ``"tls"`` when only the scheme says
    https, or None for plain HTTP. Our TLS listener sets ``inspector.tls``; otherwise the SSL
    socket the server hands over (``gunicorn.socket``/``werkzeug.socket``) is asked."""
    version = environ.get(ENVIRON_KEY)
    if version:
        return str(version)
    for key in ("gunicorn.socket", "werkzeug.socket"):
        get = getattr(environ.get(key), "version", None)
        if callable(get):
            with contextlib.suppress(Exception):
                found = get()
                if found:
                    return str(found)
    return "tls" if environ.get("wsgi.url_scheme") == "https" else None


# -- telling the user ----------------------------------------------------------------------------
def describe_ca(path: Path) -> dict[str, Any]:
    """Facts about the CA certificate at ``path`` for the CLI and the UI."""
    from cryptography.hazmat.primitives import hashes

    cert = _load_cert(path)
    if cert is None:
        return {"path": str(path), "exists": False}
    return {
        "path": str(path), "exists": True,
        "subject": cert.subject.rfc4514_string(),
        "sha256": cert.fingerprint(hashes.SHA256()).hex(":").upper(),
        "not_after": cert.not_valid_after_utc.strftime("%Y-%m-%d"),
    }


def trust_instructions(path: Path, port: int = 8443) -> str:
    """How to make common clients trust the CA at ``path`` (plain text, one block)."""
    p = str(path)
    url = f"https://localhost:{port}/in/demo"
    return "\n".join([
        f"curl:     curl --cacert {p} {url}",
        f"Python:   export SSL_CERT_FILE={p}        (ssl, urllib, httpx)",
        f"          export REQUESTS_CA_BUNDLE={p}   (requests)",
        "          both replace the default bundle for that process; to keep public sites",
        "          working too, trust the CA in the OS store instead.",
        f"Node.js:  export NODE_EXTRA_CA_CERTS={p}  (added to Node's own list)",
        "OS store:",
        f"  Debian/Ubuntu: sudo cp {p} /usr/local/share/ca-certificates/webhook-inspector.crt"
        " && sudo update-ca-certificates",
        f"  Fedora/RHEL:   sudo cp {p} /etc/pki/ca-trust/source/anchors/webhook-inspector.pem"
        " && sudo update-ca-trust",
        "  macOS:         sudo security add-trusted-cert -d -r trustRoot -k "
        f"/Library/Keychains/System.keychain {p}",
        f"  Windows:       certutil -user -addstore Root {p}",
        "  Firefox keeps its own store: Settings > Privacy & Security > Certificates > View "
        "Certificates > Authorities > Import.",
        "The CA's private key stays in the same folder, readable by you only: never share it. "
        "Delete the folder to start over (and remove the old CA from wherever you trusted it).",
    ])
