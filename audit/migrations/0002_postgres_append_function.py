"""PostgreSQL only: `bosun_audit_append`, one server-side call per appended event.

See audit/append.py for why. The canonical document arrives in four pieces around the values
only known under the chain head's lock (previous hash, sequence, time), which it fills in
before hashing; `audit verify` recomputes the same hash in Python.
"""

from django.db import migrations

CREATE = r"""
CREATE OR REPLACE FUNCTION bosun_audit_append(
    doc_before_prev text, doc_before_sequence text, doc_before_time text, doc_rest text,
    p_principal text, p_user_id bigint, p_source_ip text, p_user_agent text, p_action text,
    p_resources jsonb, p_params_json text, p_outcome text, p_error_code text,
    p_request_id text, p_face text
) RETURNS TABLE (sequence bigint, "time" timestamptz, prev_hash text, hash text)
LANGUAGE plpgsql AS $$
DECLARE
    head_sequence bigint;
    head_hash text;
    moment timestamptz;
    new_hash text;
BEGIN
    SELECT h.sequence, h.hash INTO head_sequence, head_hash
      FROM audit_chainhead h WHERE h.id = 1 FOR UPDATE;
    IF NOT FOUND THEN
        -- First append (or a flushed head): start from the newest stored event.
        INSERT INTO audit_chainhead (id, sequence, hash)
        SELECT 1, COALESCE(e.sequence, 0), COALESCE(e.hash, repeat('0', 64))
          FROM (SELECT NULL) AS one
          LEFT JOIN LATERAL (
              SELECT a.sequence, a.hash FROM audit_auditevent a
               ORDER BY a.sequence DESC LIMIT 1
          ) e ON true
        ON CONFLICT (id) DO NOTHING;
        SELECT h.sequence, h.hash INTO head_sequence, head_hash
          FROM audit_chainhead h WHERE h.id = 1 FOR UPDATE;
    END IF;
    -- Taken under the lock, so times never run backwards along the chain.
    moment := date_trunc('microseconds', clock_timestamp());
    new_hash := encode(sha256(convert_to(
        doc_before_prev || '"' || head_hash || '"'
        || doc_before_sequence || (head_sequence + 1)::text
        || doc_before_time || '"'
        || to_char(moment AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') || '"'
        || doc_rest,
        'UTF8')), 'hex');
    INSERT INTO audit_auditevent (
        sequence, "time", principal, user_id, source_ip, user_agent, action, resources,
        params_json, outcome, error_code, request_id, face, prev_hash, hash
    ) VALUES (
        head_sequence + 1, moment, p_principal, p_user_id, p_source_ip, p_user_agent,
        p_action, p_resources, p_params_json, p_outcome, p_error_code, p_request_id, p_face,
        head_hash, new_hash
    );
    UPDATE audit_chainhead h SET sequence = head_sequence + 1, hash = new_hash WHERE h.id = 1;
    RETURN QUERY SELECT head_sequence + 1, moment, head_hash, new_hash;
END;
$$;
"""

DROP = "DROP FUNCTION IF EXISTS bosun_audit_append"


def create_function(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop_function(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [migrations.RunPython(create_function, drop_function)]
