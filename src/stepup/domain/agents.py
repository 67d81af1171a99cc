"""A short, language-neutral name for a browser from its user-agent string."""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

# The first token that matches names the browser: Edge and Opera also say "Chrome/",
# Chrome also says "Safari/".
BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("YaBrowser/", "Yandex Browser"),
            ("Firefox/", "Firefox"), ("Chromium/", "Chromium"), ("Chrome/", "Chrome"),
            ("Version/", "Safari"))
SYSTEMS = (("Windows", "Windows"), ("Android", "Android"), ("iPhone", "iPhone"),
           ("iPad", "iPad"), ("CrOS", "ChromeOS"), ("Mac OS X", "macOS"),
           ("Linux", "Linux"))
AGENT_MAX = 60
# ``network_of`` and ``device_key`` are pure and parse (``ipaddress``, a regular
# expression): a login step asks them about the same few addresses and agents again and
# again (its own, and the account's recent ones), so their answers are kept, for this
# many inputs each, and only for inputs of bounded length (what is stored of an agent).
CACHED = 4096
IP_MAX = 64  # longer is no address anyway
AGENT_STORED = 300  # what an audit row keeps of a user agent


def short_agent(agent: str | None) -> str | None:
    """``Mozilla/5.0 (X11; Linux x86_64) … Chrome/126.0.0.0 …`` → ``Chrome 126, Linux``."""
    if not agent:
        return None
    browser = next((f"{name} {m.group(1)}" for token, name in BROWSERS
                    if (m := re.search(re.escape(token) + r"(\d+)", agent))
                    and (name != "Safari" or "Safari/" in agent)), None)
    system = next((name for token, name in SYSTEMS if token in agent), None)
    if browser or system:
        return ", ".join(p for p in (browser, system) if p)
    return agent if len(agent) <= AGENT_MAX else agent[:AGENT_MAX - 1] + "…"


def network_of(ip: str | None) -> str | None:
    """The /24 of an IPv4 address, the /64 of an IPv6 one: a home or office, roughly."""
    if not ip:
        return None
    return _network_of(ip) if len(ip) <= IP_MAX else ip


@lru_cache(maxsize=CACHED)
def _network_of(ip: str) -> str:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    prefix = 24 if addr.version == 4 else 64
    return str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False))


def device_key(user_agent: str | None, ip: str | None) -> tuple[str, str | None]:
    """What makes a login "from a known device": the user agent with its version numbers
    taken out (browsers update every few weeks) and the client's network."""
    return _agent_key((user_agent or "")[:AGENT_STORED]), network_of(ip)


@lru_cache(maxsize=CACHED)
def _agent_key(agent: str) -> str:
    return re.sub(r"\d+(?:[._]\d+)*", "", agent)
