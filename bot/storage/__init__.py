"""The one owner of the SQLite history file: every table's schema, the one migration list,
and the repositories the rest of the code calls. No other module holds SQL or a connection."""
