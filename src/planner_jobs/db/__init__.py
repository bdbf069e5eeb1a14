"""The database adapter: engine start-up, the embedded server, models, migrations, queries."""
