"""Probing this machine: run the commands and hand their output to the domain parser."""
