"""Recording chunks compressed with lz4 instead of pglz, on PostgreSQL servers built with it.

During a flood (`cat` of a large file) the relay writes a chunk of up to 512 KiB every few
milliseconds, and PostgreSQL compressing it with pglz was most of each write's time: lz4
compresses terminal output about as well, several times faster. Only new values change; a
server without lz4 (or before PostgreSQL 14) keeps pglz, with a notice. SQLite has nothing
to change.
"""

from django.db import migrations

COMPRESSION = """
DO $$
BEGIN
    EXECUTE 'ALTER TABLE shell_sessions_recordingchunk ALTER COLUMN data SET COMPRESSION {method}';
EXCEPTION WHEN others THEN
    RAISE NOTICE USING MESSAGE = 'recording chunks keep their compression: ' || SQLERRM;
END
$$;
"""


def _compression(method: str):
    def apply(apps, schema_editor) -> None:
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(COMPRESSION.format(method=method))

    return apply


class Migration(migrations.Migration):
    dependencies = [("shell_sessions", "0003_session_preferences")]

    operations = [
        migrations.RunPython(_compression("lz4"), _compression("pglz"), elidable=False),
    ]
