"""Who is on the other end of a request: the client, not the load balancer in front.

Behind a load balancer REMOTE_ADDR is the balancer's address for every client, so sign-in
throttling keyed on it would lock everyone out together. X-Forwarded-For is believed only
when the connection comes from a proxy listed in PROMOTER_TRUSTED_PROXIES (CIDRs); anyone
else could write any address into it.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings

MAX_LENGTH = 64  # an IPv6 address with a zone fits


@lru_cache(maxsize=8)
def _networks(proxies: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(p, strict=False) for p in proxies)


def _parse(text: str):
    try:
        return ipaddress.ip_address(text.strip().split("%", 1)[0])
    except ValueError:
        return None


def _trusted(address, networks) -> bool:
    return address is not None and any(address in network for network in networks)


def client_address(request) -> str:
    """The client's address: the nearest X-Forwarded-For hop not a trusted proxy, else the peer.

    X-Forwarded-For lists the client first and each proxy appends the address it saw, so it
    is read from the right: trusted proxies are skipped, and the first other address is the
    client's. An unparsable hop stops the walk (nothing left of it can be believed).
    """
    if request is None:
        return ""
    peer = (request.META.get("REMOTE_ADDR") or "")[:MAX_LENGTH]
    networks = _networks(tuple(settings.PROMOTER_TRUSTED_PROXIES))
    if not networks or not _trusted(_parse(peer), networks):
        return peer
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()][-32:]
    client = peer
    for hop in reversed(hops):
        address = _parse(hop)
        if address is None:
            break
        client = str(address)
        if not _trusted(address, networks):
            break
    return client[:MAX_LENGTH]
