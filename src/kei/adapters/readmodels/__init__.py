"""The read models' home in the database: the projection engine that keeps them caught up
from the verified log, its SQLAlchemy engine and state table, and their seals.
"""
