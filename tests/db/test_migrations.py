from pathlib import Path

from sqlalchemy import create_engine, text

from aethercrown.db import migrate
from aethercrown.db.registry import metadata
from tests.conftest import fresh_database, table_names


def test_migrations_from_empty_up_down_up_on_every_backend(tmp_path: Path) -> None:
    for url in fresh_database("migrations", tmp_path):
        migrate.upgrade(url)
        assert set(metadata.tables) <= table_names(url)
        engine = create_engine(url)
        assert migrate.is_current(engine)
        with engine.connect() as conn:
            tiers = conn.execute(text("SELECT slug, monthly_price FROM tiers ORDER BY rank")).all()
        assert [tuple(t) for t in tiers] == [
            ("starter", 2900),
            ("professional", 9900),
            ("enterprise", 49900),
        ]
        migrate.downgrade(url)
        assert table_names(url) <= {"alembic_version"}
        assert not migrate.is_current(engine)
        migrate.upgrade(url)
        assert migrate.is_current(engine)
        engine.dispose()


def test_models_match_migrations(tmp_path: Path) -> None:
    """Autogenerate against the migrated schema finds no difference from the models."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    for url in fresh_database("drift", tmp_path):
        migrate.upgrade(url)
        engine = create_engine(url)
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
        engine.dispose()
        assert diff == [], diff


def test_processes_migrating_one_new_database_at_once_all_succeed(tmp_path: Path) -> None:
    """Every command migrates a database it finds behind, so several may start on a new one
    together: they queue on a lock, the first applies everything, the others nothing."""
    import subprocess
    import sys

    script = (
        "import sys; from aethercrown.db import migrate; print(len(migrate.upgrade(sys.argv[1])))"
    )
    for url in fresh_database("concurrent", tmp_path):
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", script, url],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(3)
        ]
        results = [(p.communicate(timeout=120), p.returncode) for p in procs]
        assert [code for _, code in results] == [0, 0, 0], [err for (_, err), _ in results]
        applied = sorted(int(out) for (out, _), _ in results)
        assert applied[:2] == [0, 0] and applied[2] >= 10
        engine = create_engine(url)
        assert migrate.is_current(engine)
        engine.dispose()
