"""Network-mode adapters: WireGuard (wg-quick, wg), IPsec (strongSwan VICI), OpenVPN
(the management interface), each behind :class:`kei.adapters.net.mode.NetworkMode`."""
