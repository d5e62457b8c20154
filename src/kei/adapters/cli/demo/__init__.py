"""``kei demo``: kei end to end on a throwaway ledger; ``steps.py`` lists the steps."""
