"""The child processes: a sender and a receiver, each a separate program (python -m)."""
