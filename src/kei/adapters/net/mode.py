"""The one seam every tunnel backend implements (upstream's ``NetworkMode`` trait).

Unlike upstream, a mode is built from its settings and uses them: ``configure`` brings up
exactly the tunnel the settings describe, and ``config_sha256`` is what the log signs in
place of the settings themselves (which may name key files). Keys are read from files at
``configure`` time and never leave the adapter.
"""

from __future__ import annotations

from typing import ClassVar, Protocol

from kei.domain.net.values import ActionResult, ObservedPeer

__all__ = ["ModeBase", "NetworkMode"]


class NetworkMode(Protocol):
    """A tunnel kei can bring up, take down and observe."""

    @property
    def mode_name(self) -> str:
        """``wireguard``, ``ipsec`` or ``openvpn``: the first part of the stream name."""
        ...

    @property
    def name(self) -> str:
        """The tunnel's name in kei's settings (``net/<mode>/<name>``)."""
        ...

    @property
    def is_public(self) -> bool:
        """Whether the tunnel accepts peers from the open network."""
        ...

    @property
    def allowed_ports(self) -> tuple[int, ...]:
        """The ports the settings open to peers, recorded with the intent."""
        ...

    def is_up(self) -> bool | None:
        """Whether the backend has the tunnel now; ``None`` when the mode cannot tell
        (then drift is not checked)."""
        ...

    def config_sha256(self) -> str:
        """Hex SHA-256 of the effective configuration, secrets replaced by their digests."""
        ...

    def configure(self) -> ActionResult:
        """Bring the tunnel up as configured; failures are results, not exceptions."""
        ...

    def teardown(self) -> ActionResult:
        """Take the tunnel down; tearing down a tunnel that is down is ``ok``."""
        ...

    def peers(self) -> list[ObservedPeer]:
        """The peers the backend reports now; raises ``NetError`` if it cannot say."""
        ...


class _Described(Protocol):
    """What ``ModeBase`` reads of a mode's checked settings."""

    @property
    def name(self) -> str:
        """The ``[tunnels.NAME]`` table's name."""
        ...

    @property
    def public(self) -> bool:
        """Its ``public`` key."""
        ...

    @property
    def allowed_ports(self) -> tuple[int, ...]:
        """Its ``allowed_ports`` key, checked, sorted, each once."""
        ...


class ModeBase:
    """``mode_name``, ``name``, ``is_public`` and ``allowed_ports`` of a mode built from
    checked settings, and no drift check (every shipped mode derives from it)."""

    MODE: ClassVar[str]
    settings: _Described

    @property
    def mode_name(self) -> str:
        return self.MODE

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def is_public(self) -> bool:
        return self.settings.public

    @property
    def allowed_ports(self) -> tuple[int, ...]:
        return self.settings.allowed_ports

    def is_up(self) -> bool | None:
        return None
