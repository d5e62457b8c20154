"""The machine a local model would run on: probe output parsed into values, and what size
of model it can run (upstream kei-machine-probe).
"""
