"""Alembic migrations of every table of the app (launch state, packets, CDS, worklist), run at
start-up and by `secondlook migrate`, on SQLite and PostgreSQL alike."""
