"""Client-side helpers the Redis-protocol scenarios (dragonfly, valkey) share: the server's address, the lab CA copied
to a client container, a python3-redis call over TLS with the password, and a plain TCP connect.

Scenarios import it with their tests directory's ../../shared on sys.path (testinfra runs each scenario's tests/)."""
import shlex


def server_ip(host):
    """The first address of the server container (the one its allow-list and certificate name)."""
    return host.check_output("hostname -I").split()[0]


def install_ca(host, client, ca_path, dest):
    """Copy the CA the server installed (ca_path on host) to dest on client; return dest."""
    ca = host.file(ca_path).content_string
    client.run("cat > %s <<'EOF'\n%sEOF" % (shlex.quote(dest), ca))
    return dest


def redis_tls(client, ip, password, ca, code, port=6379):
    """Run python3 code on client with `r`, a python3-redis client over TLS (verified against ca) with password."""
    script = (
        "import redis, sys\n"
        "r = redis.Redis(host=%r, port=%d, password=%r, ssl=True, ssl_ca_certs=%r,"
        " socket_timeout=3, socket_connect_timeout=3)\n%s\n" % (ip, port, password, ca, code)
    )
    return client.run("python3 -c %s" % shlex.quote(script))


def can_connect(client, ip, port=6379):
    """Whether client completes a TCP connection to ip:port within 3 seconds."""
    code = "import socket,sys; s=socket.socket(); s.settimeout(3); sys.exit(s.connect_ex((%r, %d)))" % (ip, port)
    return client.run("python3 -c %s" % shlex.quote(code)).rc == 0
