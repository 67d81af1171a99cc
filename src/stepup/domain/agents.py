"""A short, language-neutral name for a browser from its user-agent string."""

from __future__ import annotations

import ipaddress
import re

# The first token that matches names the browser: Edge and Opera also say "Chrome/",
# Chrome also says "Safari/".
BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("YaBrowser/", "Yandex Browser"),
            ("Firefox/", "Firefox"), ("Chromium/", "Chromium"), ("Chrome/", "Chrome"),
            ("Version/", "Safari"))
SYSTEMS = (("Windows", "Windows"), ("Android", "Android"), ("iPhone", "iPhone"),
           ("iPad", "iPad"), ("CrOS", "ChromeOS"), ("Mac OS X", "macOS"),
           ("Linux", "Linux"))
AGENT_MAX = 60


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
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    prefix = 24 if addr.version == 4 else 64
    return str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False))


def device_key(user_agent: str | None, ip: str | None) -> tuple[str, str | None]:
    """What makes a login "from a known device": the user agent with its version numbers
    taken out (browsers update every few weeks) and the client's network."""
    return re.sub(r"\d+(?:[._]\d+)*", "", (user_agent or "")[:300]), network_of(ip)
