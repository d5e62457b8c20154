"""Agent memory (upstream kei-memory): the injection guard run before anything is kept,
and the query values every memory reader shares."""
