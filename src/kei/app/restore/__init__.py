"""Putting checked rows into a log, all or nothing: what ``kei replay`` (a bundle) and
``kei events import`` (JSON lines) share.

- ``target``: the store the rows go to, looked at without writing anything;
- ``staging``: the scratch store the rows are read into and checked in first;
- ``placement``: how the rows meet the target's chain (restore, extend or prefix), or
  why they may not (another ledger, a gap, a fork).
"""
