"""API tokens: who may read, write or administer a ``kei serve`` ledger, as events.

``grant.py`` is the seam ``kei serve`` authenticates through, ``text.py`` the bearer
text (``kei_<token_id>_<secret>``) and its digest, ``book.py`` the fold of
``token.created`` / ``token.revoked`` and the answer to a bearer. The ledger side (making
secrets, reading the events, the ``Authenticator``) is ``kei.app.tokens``.
"""
