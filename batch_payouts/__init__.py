"""batch-payouts: a spreadsheet of beneficiaries in, Conekta OXXO cash-withdrawal references out, exactly once."""

__version__ = "0.1.0"
