"""kei's local LLM backends: Ollama and llama.cpp over HTTP, MLX through ``mlx_lm``.

``protocol`` holds the one typed protocol, its values and errors; ``ollama``,
``llamacpp`` and ``mlx`` speak it; ``router`` picks the backend for a model (with the
catalog's fallback walk); ``health`` says which backends are up. Nothing is re-exported
here, so importing the router or the protocol does not load ``httpx``.
"""
