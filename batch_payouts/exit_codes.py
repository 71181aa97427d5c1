"""Every exit code the CLI uses, in one place, so a cron alert can tell them apart.

Why a module of its own: the codes are a contract with the scripts that run the
tool unattended.  A cron job must know whether to page someone (a bad file, a
refused key: nothing will change by itself), to simply try again later (another
run holds the batch), or to read the results sheet (some rows need a look).  The
README's exit-code table is written from ``EXIT_CODES`` below (a test keeps them
equal), and the ``--json`` contracts take their values from here.

Imports nothing: ``validate`` and ``--help`` load it too.
"""

from __future__ import annotations

OK = 0  # everything the command was asked to do is done
ATTENTION = 1  # it ran, but something needs a person: rows not created, orders not fetched, a log tampered...
CANNOT_RUN = 2  # nothing was done: fix the file, the key, the options or the config, then run again
TRY_LATER = 75  # EX_TEMPFAIL (sysexits.h): another run holds the batch or the ledger; nothing was sent
CRASHED = 70  # EX_SOFTWARE (sysexits.h): a bug in the tool; what was sent is in the ledger, a rerun is safe
INTERRUPTED = 130  # Ctrl-C or SIGTERM: rows in flight finished and were recorded; run again to continue

# code -> what it means, for the README table and the --json contracts (English, like both)
EXIT_CODES = {
    OK: "Done: every row created (`validate`: every row valid); `status`, `cancel`, `reconcile`, "
        "`audit verify`: all good.",
    ATTENTION: "Ran, but look at the results: some rows not created (invalid, failed, not sent, duplicate or "
               "unconfirmed), an order not fetched or not cancelled, Conekta and the ledger differ, an audit log "
               "was tampered with, a schema differs.",
    CANNOT_RUN: "Could not run, nothing was sent: unreadable file, missing columns, no rows, no or refused API key, "
                "a LIVE key without `--live`, balance too low, `--max-total` exceeded, insecure API address, "
                "disk full, bad option or config, a batch the approval policy has not approved. Fix what the message names, then run again.",
    TRY_LATER: "Try again later (EX_TEMPFAIL), nothing was sent: another run (on this or, with a PostgreSQL ledger, "
               "any host) holds this batch's lock, or another "
               "process holds the ledger file. A cron job can simply retry at its next slot.",
    CRASHED: "An unexpected error (EX_SOFTWARE): a bug in the tool, not in your file. What was sent is in the ledger, "
             "so running the same command again never pays twice; the message names a file with the details to report.",
    INTERRUPTED: "Interrupted (Ctrl-C or SIGTERM): rows in flight finished and were recorded, the partial sheet "
                 "was written; run the same command again to continue.",
}
