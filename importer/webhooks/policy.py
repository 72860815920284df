"""Where webhooks may send: http(s) to public addresses, unless the operator allows a host or network.

The check runs when a webhook is saved, when it is tested and before every delivery attempt,
because a name that resolved to a public address yesterday may resolve to an internal one today.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Union
from urllib.parse import SplitResult, urlsplit

from importer.config import get_settings
from importer.errors import InvalidInput

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]
DEFAULT_PORTS = {"http": 80, "https": 443}


class BlockedByPolicy(InvalidInput):
    """The URL is well formed but points somewhere webhooks may not go."""


class UnresolvableHost(InvalidInput):
    """DNS gave no address for the host (it may exist later: deliveries retry)."""


@dataclass(frozen=True)
class AllowList:
    hosts: frozenset[str]
    networks: tuple[IPNetwork, ...]

    @classmethod
    def from_settings(cls) -> AllowList:
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in get_settings().webhook_allowed_networks:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(entry.lower().rstrip("."))
        return cls(frozenset(hosts), tuple(networks))

    def allows_address(self, address: IPAddress) -> bool:
        return any(address in network for network in self.networks)


def parse_url(url: str) -> SplitResult:
    """Only absolute http(s) URLs with a host; anything else is refused before any network use."""
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as exc:
        raise InvalidInput(f"url: not a valid URL ({exc})") from exc
    if parts.scheme.lower() not in DEFAULT_PORTS:
        raise InvalidInput("url: must start with http:// or https://")
    if not parts.hostname:
        raise InvalidInput("url: must name a host, like https://example.com/hooks")
    return parts


def _address_kind(address: IPAddress) -> str:
    for attribute, kind in (
        ("is_loopback", "loopback"), ("is_link_local", "link-local"), ("is_multicast", "multicast"),
        ("is_unspecified", "unspecified"), ("is_private", "private"), ("is_reserved", "reserved"),
    ):
        if getattr(address, attribute):
            return kind
    return "non-public"


def _normalised(raw: str) -> IPAddress:
    address = ipaddress.ip_address(raw.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def resolve(host: str, port: int) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnresolvableHost(f"cannot resolve host {host!r}: {exc}") from exc
    return sorted({_normalised(str(info[4][0])) for info in infos}, key=str)


def check_address(host: str, address: IPAddress, allow: AllowList) -> None:
    if address.is_global or allow.allows_address(address):
        return
    subject = str(address) if host == str(address) else f"{host} resolves to {address}, which"
    raise BlockedByPolicy(f"blocked by policy: {subject} is a {_address_kind(address)} address")


def check_connected(host: str, peer: str) -> None:
    """The same rule for the address a connection really reached."""
    allow = AllowList.from_settings()
    if host.lower().rstrip(".") not in allow.hosts:
        check_address(host, _normalised(peer), allow)


def check_url(url: str) -> None:
    """Raise InvalidInput (BlockedByPolicy, UnresolvableHost) unless webhooks may send to `url`."""
    parts = parse_url(url)
    host = (parts.hostname or "").rstrip(".")
    allow = AllowList.from_settings()
    if host.lower() in allow.hosts:
        return
    port = parts.port or DEFAULT_PORTS[parts.scheme.lower()]
    for address in resolve(host, port):
        check_address(host, address, allow)
