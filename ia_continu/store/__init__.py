"""Where the loop keeps its state: engine, tables, migrations, cross-process locks."""
