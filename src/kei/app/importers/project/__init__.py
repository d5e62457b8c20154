"""``kei import project PATH|URL``: a repository's modules, trait matches, doc skills
and port plan as events (``importing``), its gap report and plan from the read model
(``reads``), and a plan phase forked as an agent (``phases``). The walker, tree-sitter
and pygount are the ``kei[project]`` extra, loaded only here."""
