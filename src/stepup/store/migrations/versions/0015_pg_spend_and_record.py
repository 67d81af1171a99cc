"""PostgreSQL: a verified TOTP step spent, audited and its API key counted by one call

Revision ID: 0015
Revises: 0014

A portal's verify of a right authenticator-app code writes three rows: the method's
last step (single use), the account's audit event and chain head, the API key's count.
Sent as statements inside BEGIN … COMMIT that is five round trips; as one call of this
function, sent outside any transaction, it is one, and PostgreSQL runs the call as a
transaction of its own: all of it or nothing (store/audit.py, ``spend_and_record``).

Each condition the statements would have met is checked here, in the order they take
their rows (the method row, the user row, the counter row: the order of every other
verification, so no cycle of locks can close with one):

- a guard of the account or the method locked since the caller read it: nothing
  written, NULL answered (the caller then checks again the ordinary way, and refuses);
- the step spent already (a racing verify of the same code): nothing written, NULL;
- the chain's head moved since the caller read it, or the key's count over its rate:
  an error (SQLSTATE ``SU001`` / ``SU002``), which undoes what the call wrote.

SQLite has no such function and needs none: its statements run in process.
"""

from __future__ import annotations

from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

FUNCTION = """
CREATE FUNCTION stepup_spend_and_record(
    p_method varchar, p_step bigint, p_now timestamptz,
    p_user varchar, p_scope_a varchar, p_scope_b varchar,
    p_prev_hash varchar, p_hash varchar,
    p_actor varchar, p_event varchar, p_ip varchar, p_user_agent varchar, p_data json,
    p_at timestamptz,
    p_counter varchar, p_window timestamptz, p_limit integer)
RETURNS integer
LANGUAGE plpgsql
AS $$
DECLARE
    used integer;
BEGIN
    PERFORM 1 FROM guards
     WHERE user_id = p_user AND scope IN (p_scope_a, p_scope_b) AND locked_until > p_now;
    IF FOUND THEN
        RETURN NULL;
    END IF;
    UPDATE methods SET last_step = p_step, last_used_at = p_now
     WHERE id = p_method AND (last_step IS NULL OR last_step < p_step);
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    UPDATE users SET audit_head = p_hash
     WHERE id = p_user AND audit_head IS NOT DISTINCT FROM p_prev_hash;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the audit chain of the account moved' USING ERRCODE = 'SU001';
    END IF;
    INSERT INTO audit_events (user_id, actor, event, ip, user_agent, data, created_at,
                              prev_hash, hash)
    VALUES (p_user, p_actor, p_event, p_ip, p_user_agent, p_data, p_at, p_prev_hash, p_hash);
    INSERT INTO rate_counters (key, window_start, count) VALUES (p_counter, p_window, 1)
        ON CONFLICT (key, window_start) DO UPDATE SET count = rate_counters.count + 1
        RETURNING count INTO used;
    IF used > p_limit THEN
        RAISE EXCEPTION 'the API key is over its rate' USING ERRCODE = 'SU002';
    END IF;
    RETURN used;
END
$$
"""

SIGNATURE = ("stepup_spend_and_record(varchar, bigint, timestamptz, varchar, varchar, "
             "varchar, varchar, varchar, varchar, varchar, varchar, varchar, json, "
             "timestamptz, varchar, timestamptz, integer)")


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(f'DROP FUNCTION {SIGNATURE}')
