"""Notification channels: one module per provider, all on httpx (see :mod:`.channel`).

- :mod:`.channel`: the Channel protocol the notifier (``kei.app.notify``) uses;
- :mod:`.slack`, :mod:`.discord`, :mod:`.telegram`, :mod:`.sms` (Twilio, and its status
  callback signature check), :mod:`.apprise_channel` (the optional ``kei[apprise]``);
- :mod:`.config`: channels from ``notify.toml`` and upstream's environment variables
  (:mod:`.settings` checks each value);
- :mod:`.http` (one POST, its answer), :mod:`.failures` (what an answer means),
  :mod:`.secrets` (no secret in any error), :mod:`.text` and :mod:`.gsm7` (limits).
"""
