"""Files kei reads and writes outside the store: configuration, key files, pins, state
folders, user-named outputs written atomically, and bounded reads of user inputs.
"""
