"""Use cases: what joins the domain rules, the read models and the driven adapters.

Each module composes seams and returns values; none prints or reads the environment
(the CLI, in ``kei.adapters.cli``, does). ``ledger/`` is the public ``Ledger`` and
its append, follow and verify paths; the feature modules (``agents``, ``costs``,
``memory``, ``retro``, ``routing``, ``llm``) are the services the commands call;
``bundle/``, ``jsonl/`` and ``importers/`` carry logs in and out.
"""
