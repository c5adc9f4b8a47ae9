"""Test hosts in network namespaces: a private switch and one namespace per host, made and removed by tests.

Every address lives only inside namespaces this module creates (a bridge in its own namespace joins them),
so nothing leaves the machine and the host's own network is untouched.
"""

import os
import subprocess
import uuid
from typing import Dict, List, Optional

SUBNET = "10.213.{net}.{host}"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def namespaces_available() -> Optional[str]:
    """None when this process can create network namespaces, else the reason it cannot."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    name = f"scoot-probe-{uuid.uuid4().hex[:6]}"
    try:
        _ip("netns", "add", name)
    except (OSError, subprocess.CalledProcessError) as e:
        return f"cannot create network namespaces here: {getattr(e, 'stderr', b'') or e}"
    _ip("netns", "del", name)
    return None


class HostNetwork:
    """Hosts named by the caller, each in its own namespace with one address on a shared /24."""

    def __init__(self, hosts: List[str], net: int = 7):
        self.tag = uuid.uuid4().hex[:5]
        self.switch = f"scoot-sw-{self.tag}"
        self.namespaces: Dict[str, str] = {}
        self.addresses: Dict[str, str] = {}
        self._hosts = hosts
        self._net = net

    def __enter__(self) -> "HostNetwork":
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def _build(self) -> None:
        _ip("netns", "add", self.switch)
        self.namespaces["switch"] = self.switch
        _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.switch, "link", "set", "br0", "up")
        for index, host in enumerate(self._hosts, start=1):
            ns = f"scoot-{host}-{self.tag}"
            _ip("netns", "add", ns)
            self.namespaces[host] = ns
            outer, inner = f"v{self.tag}{index}s", f"v{self.tag}{index}h"
            _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
            _ip("link", "set", outer, "netns", self.switch)
            _ip("link", "set", inner, "netns", ns)
            _ip("-n", self.switch, "link", "set", outer, "master", "br0")
            _ip("-n", self.switch, "link", "set", outer, "up")
            address = SUBNET.format(net=self._net, host=index)
            _ip("-n", ns, "addr", "add", f"{address}/24", "dev", inner)
            _ip("-n", ns, "link", "set", inner, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
            self.addresses[host] = address

    def command(self, host: str, argv: List[str]) -> List[str]:
        """``argv`` prefixed so that it runs on ``host``."""
        return ["ip", "netns", "exec", self.namespaces[host], *argv]

    def close(self) -> None:
        for ns in self.namespaces.values():
            subprocess.run(["ip", "netns", "del", ns], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.namespaces.clear()

    def __exit__(self, *exc: object) -> None:
        self.close()
