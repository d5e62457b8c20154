"""Claude Code's own records, read without I/O: the token usage its session transcripts
carry on every assistant message (``transcript``), the Task calls that start its
sub-agents and the results that end them (``subagents``), and the 5-hour usage windows
(``blocks``) its plans are metered in.
"""
