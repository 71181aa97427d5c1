"""The jobs a user asks for, end to end; the library behind the CLI and the web app.

- ``jobs.load``: read and validate a file (files/ and rules/ only: `validate` stays light);
- ``jobs.run``: pay a validated file exactly once (the ledger, the client, the pipeline);
- ``jobs.endpoint``: the built-in sandbox or Conekta, for every command that talks to the API.
"""
