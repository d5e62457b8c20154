"""Plain values kei's shipped TOML tables (the model catalog, the leak matrix) hold,
read the same way by each table's own parser.
"""
