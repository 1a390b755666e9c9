"""JMAP ids as Stalwart encodes them: base32 of a u64, alphabet below, most significant digit first."""
import random

ALPHABET = "abcdefghijklmnopqrstuvwxyz792013"
INDEX = {c: i for i, c in enumerate(ALPHABET)}
SINGLETON = "singleton"


def encode(value):
    if value == 0:
        return "a"
    out = []
    while value:
        out.append(ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))


def decode(text):
    value = 0
    for char in text:
        if char not in INDEX:
            raise ValueError(text)
        value = (value << 5) | INDEX[char]
    return value


def snowflake():
    return encode(random.getrandbits(62) | (1 << 62))


def sort_key(text):
    try:
        return decode(text)
    except ValueError:
        return -1
