"""The command line: click commands that parse options, call the facade and map outcomes to exit codes."""

from batch_payouts.cli.main import main

__all__ = ["main"]
