"""`python -m db migrate`: apply pending migrations to DATABASE_URL."""

from __future__ import annotations

import sys

from db.connection import database_url
from db.migrate import migrate


def main(argv: list[str]) -> int:
    if argv[:1] != ["migrate"]:
        print("usage: python -m db migrate", file=sys.stderr)
        return 2
    applied = migrate(database_url())
    print("applied: " + ", ".join(applied) if applied else "database is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
