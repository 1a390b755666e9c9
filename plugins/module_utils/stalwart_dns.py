# -*- coding: utf-8 -*-
# Copyright: talentmesh platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parse the BIND-style zone text Stalwart suggests (Domain.dnsZoneFile) and build DKIM TXT values."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import re
import shlex

TYPES = ("A", "AAAA", "CNAME", "MX", "TXT", "SRV", "CAA", "TLSA", "NS")


def parse_zone(text):
    records = []
    for raw in (text or "").splitlines():
        line = raw.split(";", 1)[0].strip() if '"' not in raw else raw.strip()
        if not line or line.startswith(";") or line.startswith("$"):
            continue
        tokens = shlex.split(line, posix=False)
        try:
            rtype_at = next(i for i, t in enumerate(tokens) if t.upper() in TYPES and i > 0)
        except StopIteration:
            continue
        head, rtype, rdata = tokens[:rtype_at], tokens[rtype_at].upper(), tokens[rtype_at + 1:]
        ttl = next((int(t) for t in head[1:] if t.isdigit()), None)
        record = {"name": head[0], "type": rtype, "ttl": ttl}
        if rtype == "TXT":
            record["value"] = "".join(t[1:-1] if t.startswith('"') and t.endswith('"') else t for t in rdata).replace('\\"', '"')
        elif rtype == "MX":
            record.update(priority=int(rdata[0]), value=rdata[1])
        elif rtype == "SRV":
            record.update(priority=int(rdata[0]), weight=int(rdata[1]), port=int(rdata[2]), value=rdata[3])
        else:
            record["value"] = " ".join(rdata)
        records.append(record)
    return records


def dkim_txt(public_pem, algorithm):
    """`v=DKIM1; k=...; p=...` from the PEM public key Stalwart returns for a DkimSignature."""
    body = "".join(l for l in public_pem.strip().splitlines() if not l.startswith("-----"))
    der = base64.b64decode(body)
    if "Ed25519" in algorithm:
        return "v=DKIM1; k=ed25519; p=" + base64.b64encode(der[-32:]).decode()
    return "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()


def split_email(address):
    if not re.match(r"^[^@\s]+@[^@\s]+$", address or ""):
        return None, None
    local, domain = address.rsplit("@", 1)
    return local.lower(), domain.lower()
