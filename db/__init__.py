"""PostgreSQL access: connections, migrations, repositories and the unit of work.

Nothing outside this package writes SQL.
"""
