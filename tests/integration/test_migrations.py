"""The migrator: applies each version once, records it, and is safe to run concurrently."""

from __future__ import annotations

import re
import threading

import psycopg2

from db.migrate import available_migrations, migrate
from processor.devstack.postgres import data_tables, ensure_database, truncate_data, with_database


def _fresh(database_url: str, name: str) -> str:
    return ensure_database(with_database(database_url, "postgres"), name, recreate=True)


def _versions(url: str) -> list[int]:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT version FROM schema_migrations ORDER BY version")
            return [row[0] for row in cur.fetchall()]
    finally:
        conn.close()


def test_migrations_apply_in_order_and_are_recorded(database_url):
    url = _fresh(database_url, "orderflow_migrate_once")
    applied = migrate(url)
    assert applied == [path.name for _, path in available_migrations()]
    assert _versions(url) == [version for version, _ in available_migrations()]


def test_running_the_migrator_again_changes_nothing(database_url):
    url = _fresh(database_url, "orderflow_migrate_twice")
    migrate(url)
    assert migrate(url) == []


def test_concurrent_migrators_apply_each_version_exactly_once(database_url):
    url = _fresh(database_url, "orderflow_migrate_race")
    results: list[list[str]] = []
    barrier = threading.Barrier(4)

    def run() -> None:
        barrier.wait()
        results.append(migrate(url))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    applied = [name for result in results for name in result]
    assert sorted(applied) == sorted(path.name for _, path in available_migrations())
    assert _versions(url) == [version for version, _ in available_migrations()]


def test_the_data_tables_tests_and_benchmarks_truncate_are_those_the_migrations_create(db):
    """One definition of the tables, the migrations: `data_tables` reads them back from the
    catalogue, so no list elsewhere can miss a table a new migration adds."""
    created: set[str] = set()
    for _, path in available_migrations():
        text = path.read_text().lower()
        created |= set(re.findall(r"create table (?:if not exists )?(\w+)", text))
        created -= set(re.findall(r"drop table (?:if exists )?(\w+)", text))
    assert data_tables(db) == sorted(created)
    with db.cursor() as cur:
        cur.execute("INSERT INTO idempotency_keys (idempotency_key, request_hash, order_id,"
                    " response_status, response_body) VALUES ('k', 'h', gen_random_uuid(), 201,"
                    " '{}')")
    truncate_data(db)
    with db.cursor() as cur:
        cur.execute("SELECT count(*) FROM idempotency_keys")
        assert cur.fetchone()[0] == 0
