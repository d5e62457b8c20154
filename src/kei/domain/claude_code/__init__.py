"""Claude Code's own records, read without I/O: the token usage its session transcripts
carry on every assistant message (``transcript``), and the 5-hour usage windows
(``blocks``) its plans are metered in.
"""
