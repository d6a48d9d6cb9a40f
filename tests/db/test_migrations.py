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
