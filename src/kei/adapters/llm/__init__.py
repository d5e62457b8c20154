"""kei's local LLM backends: Ollama and llama.cpp over HTTP, MLX through ``mlx_lm``.

``protocol`` holds the one typed protocol and its values (the errors are in
``kei.errors``); ``ollama``, ``llama_server`` (a running llama-server), ``llamacpp``
(llama.cpp on disk, and the router's backend) and ``mlx`` speak it, the two HTTP ones
through ``transport``; ``router`` picks the backend for a model (with the catalog's
fallback walk); ``health`` says which backends are up. Nothing is re-exported here, so
importing the router or the protocol does not load ``httpx``.
"""
