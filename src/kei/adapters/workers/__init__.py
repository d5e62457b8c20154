"""Worker processes: started one way (they die with kei), signing and verifying on more
than one core, and scratch folders a killed run leaves behind.
"""
