"""The engine: builds a world population and lets it live, writing a ledger."""
