"""DKIM keys: generation (what Stalwart's DkimManagement task does) and public-key derivation for /get."""
import base64
import datetime
import functools
import os

try:  # optional: without it DKIM keys are neither generated nor parsed (documented in README.md)
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
    AVAILABLE = True
except ImportError:  # pragma: no cover - the project venv has cryptography
    AVAILABLE = False


def selector(template, algorithm):
    today = datetime.datetime.now(datetime.timezone.utc)
    algo = "ed25519" if "Ed25519" in algorithm else "rsa"
    out = template.replace("{version}", "2" if algorithm.startswith("Dkim2") else "1")
    out = out.replace("{algorithm}", algo).replace("{hash}", "sha256")
    out = out.replace("{epoch}", str(int(today.timestamp())))
    while "{date-" in out:
        start = out.index("{date-")
        end = out.index("}", start)
        out = out[:start] + today.strftime(out[start + 6:end]) + out[end + 1:]
    return out


def generate(algorithm):
    if not AVAILABLE:
        raise RuntimeError("DKIM key generation needs the 'cryptography' package")
    key = ed25519.Ed25519PrivateKey.generate() if "Ed25519" in algorithm else rsa.generate_private_key(65537, 2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return {"@type": "Text", "secret": pem.decode()}


def pem_of(private_key):
    """The PEM text of a SecretText value ({"@type": "Text"|"EnvironmentVariable"|"File", ...})."""
    if isinstance(private_key, dict):
        kind = private_key.get("@type")
        if kind == "Text":
            return private_key.get("secret")
        if kind == "EnvironmentVariable":
            return os.environ.get(private_key.get("variableName", ""))
        if kind == "File":
            try:
                with open(private_key.get("filePath", ""), encoding="utf-8") as handle:
                    return handle.read()
            except OSError:
                return None
    return private_key


def public_key_of(private_key, algorithm):
    return _public_key_of(pem_of(private_key), algorithm)


@functools.lru_cache(maxsize=4096)
def _public_key_of(private_pem, algorithm):
    """The DKIM `p=` value for a PEM private key, as Stalwart's `publicKey` reads: base64 of the DER
    SubjectPublicKeyInfo for RSA, of the raw 32-byte key for Ed25519. ValueError when the key cannot sign with the
    algorithm."""
    if not isinstance(private_pem, str):
        raise ValueError("private key must be PEM text")
    if not AVAILABLE:
        if "-----BEGIN" not in private_pem or "PRIVATE KEY-----" not in private_pem:
            raise ValueError("invalid private key (not PEM)")
        return None
    try:
        key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    except (ValueError, TypeError) as err:
        raise ValueError("invalid private key (%s)" % err.__class__.__name__) from None
    want = ed25519.Ed25519PrivateKey if "Ed25519" in algorithm else rsa.RSAPrivateKey
    if not isinstance(key, want):
        raise ValueError("key type does not match %s" % algorithm)
    public = key.public_key()
    if "Ed25519" in algorithm:
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    else:
        raw = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(raw).decode()


def dns_value(public_key, algorithm):
    """The DKIM TXT record for a `publicKey` (p=) value."""
    return "v=DKIM1; k=%s; p=%s" % ("ed25519" if "Ed25519" in algorithm else "rsa", public_key or "")
