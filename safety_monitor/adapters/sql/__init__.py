"""SQL store (SQLAlchemy 2 async): tables, engine set-up, migrations and the unit of work."""
