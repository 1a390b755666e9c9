"""Password handling as the contract describes: known hash formats are stored verbatim, plaintext must satisfy the
policy and is hashed (here with stdlib PBKDF2-SHA256 in PHC form; Stalwart uses argon2id by default)."""
import base64
import hashlib
import hmac
import os
import re

HASH_PREFIXES = ("$argon2", "$pbkdf2", "$scrypt", "$2a$", "$2b$", "$2y$", "$1$", "$5$", "$6$", "$sha1$", "_",
                 "{SHA}", "{SSHA}", "{SHA256}", "{SSHA256}", "{SHA512}", "{SSHA512}", "{MD5}", "{ARGON2", "{PBKDF2}", "{CRYPT}")
ITERATIONS = 1000  # the emulator's own hashes are deliberately cheap


def is_hash(secret):
    return secret.startswith(HASH_PREFIXES)


def strength(secret):
    """A simple zxcvbn-like score 0..4: character classes and length (documented approximation)."""
    classes = sum(bool(re.search(p, secret)) for p in (r"[a-z]", r"[A-Z]", r"[0-9]", r"[^A-Za-z0-9]"))
    score = min(4, classes + (len(secret) >= 12) + (len(secret) >= 16) - 1)
    if len(set(secret)) <= 3:
        score = 0
    return max(0, score)


LEVELS = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4}


def policy_error(secret, policy):
    lo, hi = policy.get("passwordMinLength", 8), policy.get("passwordMaxLength", 128)
    if len(secret) < lo:
        return "Password must be at least %d characters long." % lo
    if len(secret) > hi:
        return "Password must be at most %d characters long." % hi
    need = LEVELS.get(policy.get("passwordMinStrength", "three"), 3)
    if strength(secret) < need:
        return "Password is too weak."
    return None


def _b64(raw):
    return base64.b64encode(raw).decode().rstrip("=")


def _unb64(text):
    return base64.b64decode(text + "=" * (-len(text) % 4))


def hash_password(secret):
    salt = os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", secret.encode(), salt, ITERATIONS)
    return "$pbkdf2-sha256$i=%d,l=32$%s$%s" % (ITERATIONS, _b64(salt), _b64(digest))


def verify(secret, stored):
    """True/False for formats stdlib can verify; plaintext stored values never occur (they are hashed on write)."""
    match = re.match(r"^\$pbkdf2-(sha256|sha512)\$i=(\d+)(?:,l=\d+)?\$([^$]+)\$([^$]+)$", stored)
    if match:
        algo, rounds, salt, digest = match.groups()
        calc = hashlib.pbkdf2_hmac(algo, secret.encode(), _unb64(salt), int(rounds))
        return hmac.compare_digest(calc, _unb64(digest))
    match = re.match(r"^\$scrypt\$ln=(\d+),r=(\d+),p=(\d+)\$([^$]+)\$([^$]+)$", stored)
    if match:
        ln, r, p, salt, digest = match.groups()
        raw = _unb64(digest)
        calc = hashlib.scrypt(secret.encode(), salt=_unb64(salt), n=2 ** int(ln), r=int(r), p=int(p), dklen=len(raw))
        return hmac.compare_digest(calc, raw)
    for prefix, algo in (("{SSHA}", "sha1"), ("{SSHA256}", "sha256"), ("{SSHA512}", "sha512")):
        if stored.startswith(prefix):
            raw = base64.b64decode(stored[len(prefix):])
            size = hashlib.new(algo).digest_size
            return hmac.compare_digest(hashlib.new(algo, secret.encode() + raw[size:]).digest(), raw[:size])
    for prefix, algo in (("{SHA}", "sha1"), ("{SHA256}", "sha256"), ("{SHA512}", "sha512")):
        if stored.startswith(prefix):
            return hmac.compare_digest(base64.b64encode(hashlib.new(algo, secret.encode()).digest()).decode(), stored[len(prefix):])
    return False
