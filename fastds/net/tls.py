"""TLS for the workers' TLS listener and for the connections fastds opens: the two contexts,
and reloading their certificate.

Owns the listener's context (TLS 1.2 or later; FASTDS_TLS_CERT_FILE / KEY_FILE; client
certificates checked against FASTDS_TLS_CA_FILE, required with FASTDS_TLS_VERIFY_CLIENTS=1),
the context of the connections fastds opens (FASTDS_TLS_VERIFY: the peer's certificate against
that CA, else the system's, and the name fastds/dispatch/sets.py tls_name gives), a bad file
as a ValueError naming the variable, and reloading a certificate into a live context (SIGHUP).
"""

from __future__ import annotations

import ssl


def server_context(cert_file: str, key_file: str, ca_file: str = "", verify_clients: bool = False) -> ssl.SSLContext:
    """ValueError naming the variable whose file cannot be used."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    load_certificate(context, cert_file, key_file)
    if ca_file:
        _load_ca(context, ca_file)
        context.verify_mode = ssl.CERT_REQUIRED if verify_clients else ssl.CERT_OPTIONAL
    elif verify_clients:
        raise ValueError("FASTDS_TLS_VERIFY_CLIENTS=1: expected FASTDS_TLS_CA_FILE too (the CA clients' certificates"
                         " are checked against)")
    return context


def client_context(ca_file: str = "", verify: bool = True, cert_file: str = "", key_file: str = "") -> ssl.SSLContext:
    """For the connections fastds opens; ValueError naming the variable whose file cannot be used."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # checks the certificate and the host name
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif ca_file:
        _load_ca(context, ca_file)
    else:
        context.load_default_certs()
    if cert_file:
        load_certificate(context, cert_file, key_file)
    return context


def _load_ca(context: ssl.SSLContext, ca_file: str) -> None:
    try:
        context.load_verify_locations(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"FASTDS_TLS_CA_FILE={ca_file!r}: expected PEM CA certificates ({exc})") from None


def _no_password() -> bytes:
    return b""  # an encrypted key fails to load instead of prompting on a terminal nobody watches


def load_certificate(context: ssl.SSLContext, cert_file: str, key_file: str) -> None:
    """The listener's certificate chain and key into `context`; ValueError naming the variable."""
    for name, path in (("FASTDS_TLS_CERT_FILE", cert_file), ("FASTDS_TLS_KEY_FILE", key_file)):
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise ValueError(f"{name}={path!r}: expected a readable PEM file ({exc.strerror})") from None
    try:
        context.load_cert_chain(cert_file, key_file, password=_no_password)
    except ssl.SSLError as exc:
        raise ValueError(f"FASTDS_TLS_CERT_FILE={cert_file!r}, FASTDS_TLS_KEY_FILE={key_file!r}: expected a PEM"
                         f" certificate chain and its private key ({exc.reason or exc})") from None
