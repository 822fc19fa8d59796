"""Embedded targets: small real servers a profile can test against without any setup.

Each target runs in its own process (so its CPU never counts as the console's) and announces
itself with one JSON line on stdout; the parent controls it with JSON lines on stdin.
"""
