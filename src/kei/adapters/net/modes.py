"""The registry of network modes: a mode's name → the builder of its adapter.

A builder is ``builder(name, table, base_dir) -> NetworkMode``:

- ``name``: the tunnel's name (``[tunnels.NAME]``), the last part of its stream
  ``net/<mode>/<name>``;
- ``table``: that table of ``net.toml`` as parsed TOML (``mode``, ``public``,
  ``allowed_ports``, ``netns`` and the mode's own keys);
- ``base_dir``: ``$KEI_HOME``: relative ``*_file`` paths are taken from it, and
  generated files go under ``<base_dir>/run/net/<mode>`` (``settings.runtime_dir``).

It checks every key (``settings.check_keys`` and the typed readers), raising
``NetConfigError`` for a mistake, and reads no secret yet: key files are read when
the mode computes ``config_sha256`` or runs ``configure``. It must not start anything.

WireGuard, IPsec (strongSwan VICI) and OpenVPN are registered in :data:`BUILDERS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

from kei.adapters.net.ipsec import build_ipsec
from kei.adapters.net.mode import NetworkMode
from kei.adapters.net.openvpn import build_openvpn
from kei.adapters.net.settings import HINT, NetSettings
from kei.adapters.net.wireguard import build_wireguard
from kei.errors import NetConfigError

Builder = Callable[[str, Mapping[str, Any], Path], NetworkMode]

BUILDERS: Final[dict[str, Builder]] = {
    "wireguard": build_wireguard,
    "ipsec": build_ipsec,
    "openvpn": build_openvpn,
}


def build(settings: NetSettings, name: str) -> NetworkMode:
    """The adapter of tunnel ``name`` of ``settings``."""
    tunnel = settings.tunnels[name]
    builder = BUILDERS.get(tunnel.mode)
    if builder is None:
        raise NetConfigError(f"{tunnel.where('mode')}: mode {tunnel.mode} is not available in "
                             "this kei", hint=HINT)  # fmt: skip
    return builder(name, tunnel.table, settings.base_dir)
