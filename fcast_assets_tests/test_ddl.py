"""sql/ is generated from the models: stale files fail here (`fcast db ddl` rewrites them)."""

from fcast_assets.db import ddl
from sqlmodel import SQLModel


def test_sql_files_are_up_to_date():
    for name, content in ddl.generated().items():
        path = ddl.SQL_DIR / name
        assert path.exists(), f"{path} missing: run `fcast db ddl`"
        assert path.read_text() == content, f"{path} is stale: run `fcast db ddl`"


def test_ddl_and_er_cover_every_table():
    sql = (ddl.SQL_DIR / ddl.DDL_FILE).read_text()
    er = (ddl.SQL_DIR / ddl.ER_FILE).read_text()
    for table in SQLModel.metadata.tables:
        assert f"CREATE TABLE {table} (" in sql
        assert f"    {table} {{" in er
    assert "registry_symbol ||--o{ registry_param" in er
    assert "USING GIN (tsv)" in sql
