"""``kei notify``: rules that turn log events into notifications, and the notifier that
sends them, every request, claim and outcome recorded as events (``docs/notify.md``).

- ``config``: ``$KEI_HOME/notify.toml`` (rules, delivery policies, the notifier) and
  the seam to the channel adapters' loader;
- ``follower``: the rule follower (log → ``notify.requested``, exactly once per trigger);
- ``checks``: the scheduled ``verify-chain`` and the stalled-agent check;
- ``notifier``: claim, send, record;
- ``service``: what the CLI calls (send, test, list, show, retry, run).
"""
