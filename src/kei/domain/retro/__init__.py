"""Session retrospectives: transcript lines into trace values, their event classes, and
what a session's trace events say about it.
"""
