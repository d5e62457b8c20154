"""The log as JSON lines: ``export`` writes every event with its hashes and signature,
``importing`` takes such a file back into a store after checking it whole.
"""
