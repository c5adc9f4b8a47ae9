"""``-allow_from CIDR[,CIDR...]``: which peer addresses a server accepts.

Connections from other addresses are closed at accept (Thrift) or refused with 403 (HTTP). An empty list
allows everyone, as the reference does.
"""

import ipaddress
from typing import Callable, Optional

ALLOW_FROM_HELP = "Comma-separated CIDRs whose connections are accepted (default: all)"


def parse_allow_from(text: str) -> Optional[Callable[[str], bool]]:
    """Return a predicate on peer IP strings, or None when ``text`` is empty (everyone allowed).

    Raises ValueError naming the bad entry.
    """
    entries = [part.strip() for part in text.split(",") if part.strip()]
    if not entries:
        return None
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"invalid -allow_from entry {entry!r}: want an address or CIDR") from None

    def allowed(peer: str) -> bool:
        try:
            address = ipaddress.ip_address(peer.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        return any(address in network for network in networks)

    return allowed
