"""The Service annotations (and ``spec.loadBalancerIP``) that shape a load balancer, read and checked.

:func:`read_options` never raises: it returns every problem at once, each saying what is wrong and
how to fix it with the annotation name and value quoted, because each becomes a Warning Event on
the Service and the user fixes them from ``kubectl describe``. A Service with problems keeps its
existing load balancer: a typo never tears down a working one.
"""

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from anycastlb.k8s.selectors import Selector, SelectorError, parse_selector
from anycastlb.model.addresses import AddressError, parse_address
from anycastlb.model.base import check_name
from anycastlb.model.config import ProxyProtocolVersion
from anycastlb.model.desired import MAX_IPS_PER_LOAD_BALANCER
from anycastlb.model.hostnames import check_hostnames

__all__ = [
    "ANNOTATIONS",
    "HOSTNAMES",
    "IONOS_NODE_SELECTOR",
    "IPS",
    "IP_COUNT",
    "NODE_SELECTOR",
    "POOL",
    "POPS",
    "PREFIX",
    "PROXY_PROTOCOL",
    "SHARING_KEY",
    "SNI_DEFAULT",
    "SNI_PORTS",
    "Address",
    "Options",
    "read_options",
]

PREFIX = "anycastlb.io/"
IPS = "anycastlb.io/ips"  # "203.0.113.10,2001:db8::10": these addresses (static/reserved)
IP_COUNT = "anycastlb.io/ip-count"  # "2": that many dynamic addresses per family (DNS load balancing)
SHARING_KEY = "anycastlb.io/sharing-key"  # Services with the same key may share an IP (ports differ)
PROXY_PROTOCOL = "anycastlb.io/proxy-protocol"  # v1 | v2 | none; default v2
NODE_SELECTOR = "anycastlb.io/node-selector"  # label selector: which nodes receive traffic
IONOS_NODE_SELECTOR = "cloud.ionos.com/node-selector"  # honoured so IONOS manifests migrate unchanged
POPS = "anycastlb.io/pops"  # "fra,ams": serve from these PoPs only (default: the controller's)
# SNI-routed sharing of one IP and port (docs/kubernetes.md): the TLS server names of the Service's
# SNI ports, which ports those are (TCP only), and whether it takes connections no sharer names.
HOSTNAMES = "anycastlb.io/hostnames"  # "shop.example.com,*.shop.example.com"
SNI_PORTS = "anycastlb.io/sni-ports"  # "443,8443"; default 443
SNI_DEFAULT = "anycastlb.io/sni-default"  # "true": unknown or missing SNI comes here
POOL = "anycastlb.io/pool"  # the pool to allocate from (a pool with sni_sharing: pool, say)
DEFAULT_SNI_PORTS = (443,)
ANNOTATIONS = frozenset(
    {IPS, IP_COUNT, SHARING_KEY, PROXY_PROTOCOL, NODE_SELECTOR, POPS, HOSTNAMES, SNI_PORTS, SNI_DEFAULT, POOL}
)
PROXY_VERSIONS: tuple[ProxyProtocolVersion, ...] = ("v1", "v2", "none")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_DIGITS = re.compile(r"[+-]?[0-9]+")


@dataclass(frozen=True, slots=True)
class Options:
    """What the annotations ask for, valid or not (``problems`` lists what is not)."""

    addresses: tuple[Address, ...] = ()  # specific VIPs; () = allocate dynamically
    ip_count: int = 1
    sharing_key: str | None = None
    pool: str | None = None  # None: the tenant's auto-assign pools
    proxy_protocol: ProxyProtocolVersion = "v2"
    node_selector: Selector | None = None
    node_selector_source: str = ""  # "anycastlb.io/node-selector='role=edge'", for messages
    node_selector_valid: bool = True  # False: a problem says why; which nodes it meant is unknown
    pops: tuple[str, ...] | None = None  # None: the controller's default PoPs
    hostnames: tuple[str, ...] = ()  # TLS server names of the SNI ports (canonical form)
    sni_ports: tuple[int, ...] = DEFAULT_SNI_PORTS  # the TCP ports the hostnames apply to
    sni_default: bool = False
    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


def _addresses(text: str, source: str, problems: list[str]) -> tuple[Address, ...]:
    found: list[Address] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            address = parse_address(item)
        except AddressError as error:
            problems.append(
                f"{source}: {item!r} is not an IP address we accept ({error}); write IPv4 or IPv6 "
                "addresses separated by commas, e.g. '203.0.113.10,2001:db8::10'"
            )
            continue
        if address in found:
            problems.append(f"{source}: {item} is listed twice; list each address once")
        else:
            found.append(address)
    if len(found) > MAX_IPS_PER_LOAD_BALANCER:
        problems.append(
            f"{source} lists {len(found)} addresses; a load balancer has at most "
            f"{MAX_IPS_PER_LOAD_BALANCER}, so split the ports over several Services"
        )
    return tuple(found)


def _ip_count(text: str, families: int, problems: list[str]) -> int:
    source = f"{IP_COUNT}={text!r}"
    if not _DIGITS.fullmatch(text.strip()):
        problems.append(f"{source} is not a number; write how many IPs to allocate, e.g. '2'")
        return 1
    count = int(text)
    if not 1 <= count <= MAX_IPS_PER_LOAD_BALANCER:
        problems.append(f"{source} must be between 1 and {MAX_IPS_PER_LOAD_BALANCER}")
        return 1
    if count * families > MAX_IPS_PER_LOAD_BALANCER:
        problems.append(
            f"{source} asks for {count} IPs of each of {families} IP families ({count * families} in all); "
            f"a load balancer has at most {MAX_IPS_PER_LOAD_BALANCER}, so lower the count to "
            f"{MAX_IPS_PER_LOAD_BALANCER // families} or use a single-stack Service"
        )
        return 1
    return count


@lru_cache(maxsize=1024)
def _selector(text: str) -> Selector | SelectorError:
    """Selectors repeat across Services (most have one or none): parse each text once."""
    try:
        return parse_selector(text)
    except SelectorError as error:
        return error


def _node_selector(annotations: Mapping[str, str], problems: list[str]) -> tuple[Selector | None, str, bool]:
    """The selector, its source for messages (``anycastlb.io/node-selector='role=edge'``), valid."""
    name = NODE_SELECTOR if NODE_SELECTOR in annotations else IONOS_NODE_SELECTOR
    text = annotations.get(name)
    if text is None:
        return None, "", True
    source = f"{name}={text!r}"
    parsed = _selector(text)
    if isinstance(parsed, SelectorError):
        problems.append(
            f"{source} is not a label selector (character {parsed.position + 1}: {parsed.reason}); "
            "write it as for `kubectl get nodes -l`, e.g. 'node-role.example.com/edge' or "
            "'topology.kubernetes.io/zone in (fra-1,fra-2)'"
        )
        return None, source, False
    return parsed, source, True


def _pops(text: str, problems: list[str]) -> tuple[str, ...]:
    pops: set[str] = set()
    bad = False
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            name = check_name(item, "PoP")
        except ValueError as error:
            bad = True
            problems.append(f"{POPS}={text!r}: {error}; list PoP names separated by commas, e.g. 'fra,ams'")
            continue
        if name in pops:  # as for anycastlb.io/ips: a name twice is a typo more often than not
            problems.append(f"{POPS}={text!r}: {name} is listed twice; list each PoP once")
        pops.add(name)
    if not pops and not bad:
        problems.append(f"{POPS}={text!r} names no PoP; list PoP names, e.g. 'fra,ams', or remove it")
    return tuple(sorted(pops))


def _proxy_protocol(text: str, problems: list[str]) -> ProxyProtocolVersion:
    version = text.strip().lower()
    for known in PROXY_VERSIONS:
        if version == known:
            return known
    problems.append(
        f"{PROXY_PROTOCOL}={text!r} is not a PROXY protocol version; use 'v2' (the default), "
        "'v1', or 'none' for backends that do not expect a PROXY header"
    )
    return "v2"


def _sharing_key(text: str, problems: list[str]) -> str | None:
    try:
        return check_name(text.strip(), "sharing key")
    except ValueError as error:
        problems.append(f"{SHARING_KEY}={text!r}: {error}; e.g. 'web-shared'")
        return None


def _hostnames(text: str, problems: list[str]) -> tuple[str, ...]:
    items = tuple(part.strip() for part in text.split(",") if part.strip())
    if not items:
        problems.append(
            f"{HOSTNAMES}={text!r} names no hostname; list the TLS server names, e.g. "
            "'shop.example.com,*.shop.example.com', or remove it"
        )
        return ()
    try:
        return check_hostnames(items)
    except ValueError as error:
        problems.append(f"{HOSTNAMES}={text!r}: {error}; separate names by commas")
        return ()


def _sni_ports(text: str, problems: list[str]) -> tuple[int, ...]:
    ports: list[int] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        if not _DIGITS.fullmatch(item) or not 1 <= int(item) <= 65535:
            problems.append(f"{SNI_PORTS}={text!r}: {item!r} is not a port; list ports, e.g. '443,8443'")
            continue
        if int(item) in ports:
            problems.append(f"{SNI_PORTS}={text!r}: {item} is listed twice; list each port once")
            continue
        ports.append(int(item))
    if not ports and not problems:
        problems.append(f"{SNI_PORTS}={text!r} names no port; list ports, e.g. '443', or remove it")
    return tuple(sorted(ports)) or DEFAULT_SNI_PORTS


def _sni_default(text: str, problems: list[str]) -> bool:
    value = text.strip().lower()
    if value in ("true", "false"):
        return value == "true"
    problems.append(f"{SNI_DEFAULT}={text!r} must be 'true' or 'false'")
    return False


def _sni(
    annotations: Mapping[str, str], problems: list[str], warnings: list[str]
) -> tuple[tuple[str, ...], tuple[int, ...], bool]:
    """The SNI-sharing annotations: hostnames, the ports they apply to, default or not."""
    text = annotations.get(HOSTNAMES)
    hostnames = () if text is None else _hostnames(text, problems)
    ports_text = annotations.get(SNI_PORTS)
    ports = DEFAULT_SNI_PORTS if ports_text is None else _sni_ports(ports_text, problems)
    default_text = annotations.get(SNI_DEFAULT)
    default = False if default_text is None else _sni_default(default_text, problems)
    if text is None:
        if default:
            problems.append(
                f"{SNI_DEFAULT}='true' needs {HOSTNAMES}: the default is one of the Services sharing a "
                "port by SNI; add the hostnames it serves, or remove the annotation"
            )
        if ports_text is not None:
            warnings.append(f"{SNI_PORTS} has no effect without {HOSTNAMES}; add hostnames or remove it")
    return hostnames, ports, default


def _pool(text: str, problems: list[str]) -> str | None:
    try:
        return check_name(text.strip(), "pool")
    except ValueError as error:
        problems.append(
            f"{POOL}={text!r}: {error}; name a pool of `anycastlb pools list`, e.g. 'shared-https'"
        )
        return None


def _requested_addresses(
    annotations: Mapping[str, str], load_balancer_ip: str | None, problems: list[str], warnings: list[str]
) -> tuple[Address, ...] | None:
    """The named VIPs, or None for dynamic ones: the annotation, else the deprecated spec field."""
    ips = annotations.get(IPS)
    legacy = (load_balancer_ip or "").strip()
    if ips is not None:
        if legacy:
            warnings.append(f"spec.loadBalancerIP {legacy!r} is ignored because {IPS} is set; clear it")
        addresses = _addresses(ips, f"{IPS}={ips!r}", problems)
        if not ips.strip(" ,"):
            problems.append(f"{IPS}={ips!r} names no address; list IPs, e.g. '203.0.113.10', or remove it")
        return addresses
    if legacy:
        warnings.append(
            f"spec.loadBalancerIP is deprecated in Kubernetes; move {legacy!r} to the annotation "
            f"{IPS}: {legacy!r} and clear spec.loadBalancerIP"
        )
        return _addresses(legacy, f"spec.loadBalancerIP {legacy!r}", problems)
    return None


def read_options(
    annotations: Mapping[str, str], load_balancer_ip: str | None = None, families: int = 1
) -> Options:
    """Read our annotations (``families``: how many IP families the Service asks for)."""
    problems: list[str] = []
    warnings: list[str] = []
    addresses = _requested_addresses(annotations, load_balancer_ip, problems, warnings)
    ip_count = 1
    if (count := annotations.get(IP_COUNT)) is not None:
        if addresses is None:
            ip_count = _ip_count(count, families, problems)
        else:
            warnings.append(f"{IP_COUNT}={count!r} is ignored because the addresses are named; remove one")
    key = annotations.get(SHARING_KEY)
    sharing_key = None if key is None else _sharing_key(key, problems)
    pool_text = annotations.get(POOL)
    pool = None if pool_text is None else _pool(pool_text, problems)
    proxy = annotations.get(PROXY_PROTOCOL)
    proxy_protocol = "v2" if proxy is None else _proxy_protocol(proxy, problems)
    selector, selector_source, selector_valid = _node_selector(annotations, problems)
    ionos = annotations.get(IONOS_NODE_SELECTOR)
    if NODE_SELECTOR in annotations and ionos is not None and ionos != annotations[NODE_SELECTOR]:
        warnings.append(f"{IONOS_NODE_SELECTOR} is ignored because {NODE_SELECTOR} is set; remove one")
    text = annotations.get(POPS)
    pops = None if text is None else _pops(text, problems)
    hostnames, sni_ports, sni_default = _sni(annotations, problems, warnings)
    for name in sorted(annotations):
        if name.startswith(PREFIX) and name not in ANNOTATIONS:
            warnings.append(
                f"unknown annotation {name!r} has no effect; check its spelling "
                f"(known: {', '.join(sorted(ANNOTATIONS))})"
            )
    return Options(
        addresses=addresses or (),
        ip_count=ip_count,
        sharing_key=sharing_key,
        pool=pool,
        proxy_protocol=proxy_protocol,
        node_selector=selector,
        node_selector_source=selector_source,
        node_selector_valid=selector_valid,
        pops=pops,
        hostnames=hostnames,
        sni_ports=sni_ports,
        sni_default=sni_default,
        problems=tuple(problems),
        warnings=tuple(warnings),
    )
