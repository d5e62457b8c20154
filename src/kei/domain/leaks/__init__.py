"""The leak matrix (upstream kei-leak-matrix): rules, their literal prefilters, which
strings of an event are scanned, and the scan itself.
"""
