"""The ticket store: SQLModel tables, the async engine, and the repositories."""
