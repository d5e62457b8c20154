"""The driving adapter for agent harness hooks: a hook payload read and parsed
(``payload.py``), the git branch it ran on (``git.py``), failures logged
(``hooklog.py``), one call run end to end (``run.py``), and kei's entries merged into
or removed from a harness's settings file (``settings.py``)."""
