"""One module per ``tenku`` subcommand; each defines ``register(subparsers)`` and sets ``func``.

Keep module top levels to the standard library: import torch and friends inside the handler.
"""
