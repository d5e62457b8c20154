"""One module per ``kei`` command or command group, each registered by ``app.py``.

A command is thin: parse its options (the shared ones from ``options.py``), call the
use case in ``kei.app`` inside ``context.handled`` (which turns errors into one line and
an exit code from ``exits.py``), render with ``output.py`` and ``render.py``.
"""
