"""Listeners bound from x:NetworkListener objects at start, as the real server does. `http` listeners serve the
management API and health; `smtp`, `lmtp`, `imap`, `pop3` and `manageSieve` listeners answer with their protocol's
greeting line only and close politely on QUIT/LOGOUT (no mail is accepted or served). `tlsImplicit` listeners speak
TLS from the first byte with the certificate objects (SNI picks a certificate by its names, otherwise
SystemSettings.defaultCertificateId, otherwise the first one)."""
import os
import socket
import socketserver
import ssl
import sys
import tempfile
import threading

GREETINGS = {
    "smtp": ("220 {host} Stalwart ESMTP at your service\r\n", "QUIT", "221 2.0.0 Bye.\r\n",
             "502 5.5.1 Command not implemented (emulator: greeting only)\r\n"),
    "lmtp": ("220 {host} Stalwart LMTP at your service\r\n", "QUIT", "221 2.0.0 Bye.\r\n",
             "502 5.5.1 Command not implemented (emulator: greeting only)\r\n"),
    "imap": ("* OK [CAPABILITY IMAP4rev2 IMAP4rev1 AUTH=PLAIN] Stalwart IMAP4rev2 at your service.\r\n", "LOGOUT",
             "* BYE Stalwart IMAP4rev2 bids you farewell.\r\n{tag} OK LOGOUT completed.\r\n",
             "{tag} BAD Command not implemented (emulator: greeting only).\r\n"),
    "pop3": ("+OK Stalwart POP3 at your service.\r\n", "QUIT", "+OK Stalwart POP3 bids you farewell.\r\n",
             "-ERR Command not implemented (emulator: greeting only).\r\n"),
    "manageSieve": ('"IMPLEMENTATION" "Stalwart ManageSieve"\r\n"SIEVE" "fileinto vacation"\r\n"VERSION" "1.0"\r\n'
                    'OK "Stalwart ManageSieve at your service."\r\n', "LOGOUT", 'OK "Logout completed."\r\n',
                    'NO "Command not implemented (emulator: greeting only)."\r\n'),
}


class GreetingHandler(socketserver.StreamRequestHandler):
    timeout = 60

    def handle(self):
        greeting, quit_word, bye, refuse = GREETINGS[self.server.protocol]
        self.wfile.write(greeting.format(host=self.server.hostname).encode())
        while True:
            try:
                line = self.rfile.readline(4096)
            except (OSError, ssl.SSLError):
                return
            if not line:
                return
            words = line.decode("utf-8", "replace").strip().split()
            tag = words[0] if words and self.server.protocol == "imap" else ""
            verb = (words[1] if tag and len(words) > 1 else (words[0] if words else "")).upper()
            if verb == quit_word:
                self.wfile.write(bye.format(tag=tag).encode())
                return
            self.wfile.write(refuse.format(tag=tag or "*").encode())


class Bound(socketserver.ThreadingMixIn):
    """A threading server on IPv4 or IPv6 (dual-stack for `[::]`), reusing the address across restarts."""
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, handler, family=socket.AF_INET):
        self.address_family = family
        super().__init__(address, handler, bind_and_activate=False)
        if family == socket.AF_INET6:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        self.server_bind()
        self.server_activate()


class TcpServer(Bound, socketserver.TCPServer):
    pass


def parse_bind(text):
    """'[::]:25' -> ('::', 25, AF_INET6); '127.0.0.1:8080' -> ('127.0.0.1', 8080, AF_INET)."""
    host, dummy, port = text.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port), socket.AF_INET6 if ":" in host else socket.AF_INET


def pem_pair(cert):
    """(certificate PEM, private key PEM) of an x:Certificate object, or None when a part cannot be read."""
    from .dkim import pem_of
    public = cert.get("certificate") or {}
    text = public.get("value") if public.get("@type") == "Text" else pem_of(dict(public, secret=public.get("value")))
    key = pem_of(cert.get("privateKey"))
    return (text, key) if text and key else None


def tls_context(certificates, default_id):
    """A server context with the default certificate and SNI selection over every certificate's names."""
    contexts, names = {}, {}
    with tempfile.TemporaryDirectory(prefix="stalwart-tls-") as tmp:
        for cert_id, cert in certificates.items():
            pair = pem_pair(cert)
            if pair is None:
                continue
            path = os.path.join(tmp, cert_id)
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(pair[0].strip() + "\n" + pair[1].strip() + "\n")
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            try:
                ctx.load_cert_chain(path)
            except ssl.SSLError as err:
                sys.stderr.write("certificate %s cannot be loaded: %s\n" % (cert_id, err))
                continue
            contexts[cert_id] = ctx
            for name in subject_names(pair[0]):
                names.setdefault(name.lower(), ctx)
    if not contexts:
        return None
    main = contexts.get(default_id) or contexts[sorted(contexts)[0]]

    def pick(sock, server_name, dummy):
        chosen = names.get((server_name or "").lower())
        if chosen is not None:
            sock.context = chosen

    main.sni_callback = pick
    return main


def self_signed(hostname):
    """With no certificate object, TLS listeners use a self-signed certificate for the node's hostname."""
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return {"certificate": {"@type": "Text", "value": cert.public_bytes(serialization.Encoding.PEM).decode()},
            "privateKey": {"@type": "Text", "secret": key_pem.decode()}}


def subject_names(pem):
    try:
        from cryptography import x509
    except ImportError:  # pragma: no cover
        return []
    cert = x509.load_pem_x509_certificate(pem.encode())
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        return [str(n) for n in sans.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        return []


def bind_listeners(listeners, certificates, default_cert, hostname, http_handler, emulator):
    """Start one server per (listener, bind address); returns [(name, protocol, address, server)]. A listener that
    cannot bind stops the start-up, as with the real binary."""
    context = None
    if any(item.get("tlsImplicit") for item in listeners.values()):
        context = tls_context(certificates, default_cert) or tls_context({"self-signed": self_signed(hostname)}, None)
    started = []
    rebind = dict(pair.split("=", 1) for pair in os.environ.get("STALWART_EMULATOR_REBIND", "").split(",") if "=" in pair)
    for dummy, item in sorted(listeners.items(), key=lambda kv: kv[1].get("name") or ""):
        protocol = item.get("protocol") or "smtp"
        for bind in sorted(item.get("bind") or {}):
            host, port, family = parse_bind(rebind.get(bind, bind))
            if protocol == "http":
                from .server import Server
                srv = Server((host, port), http_handler, family=family)
                srv.emulator = emulator
            elif protocol in GREETINGS:
                srv = TcpServer((host, port), GreetingHandler, family)
                srv.protocol, srv.hostname = protocol, hostname
            else:
                continue
            if item.get("tlsImplicit"):
                if context is None:
                    raise SystemExit("listener %s (%s) wants implicit TLS but no x:Certificate can be loaded"
                                     % (item.get("name"), bind))
                srv.socket = context.wrap_socket(srv.socket, server_side=True, do_handshake_on_connect=False)
            started.append((item.get("name"), protocol, bind, srv))
    return started


def run_all(servers):
    for srv in servers[1:]:
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    servers[0].serve_forever()
