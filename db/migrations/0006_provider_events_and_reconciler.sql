-- Payment-provider webhooks and the reconciler (issue 23). Additive only: the code before this
-- migration never reads these tables, so it keeps serving while the migration runs.

-- Every provider event the webhook accepted, by the provider's event id: the primary key makes
-- "each event is processed once" a database guarantee, even for concurrent redeliveries.
-- `order_id` has no foreign key: an event may name an order we do not have (a finding).
-- `outcome` says what the event did: applied (our records changed), unchanged (they already
-- agreed), stale (older news than what we hold), ignored (a type we do not handle),
-- disagreement (the provider and we disagree and nothing safe could be done: an operator
-- looks), unknown_order (no such order here).
CREATE TABLE provider_events (
    event_id      text PRIMARY KEY CHECK (length(event_id) BETWEEN 1 AND 255),
    provider      text NOT NULL,
    event_type    text NOT NULL,
    occurred_at   timestamptz NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now(),
    order_id      uuid,
    reference     text,
    outcome       text NOT NULL CHECK (outcome IN (
                      'applied', 'unchanged', 'stale', 'ignored', 'disagreement',
                      'unknown_order')),
    detail        text
);
CREATE INDEX provider_events_order_idx ON provider_events (order_id, occurred_at)
    WHERE order_id IS NOT NULL;
CREATE INDEX provider_events_received_idx ON provider_events (received_at);

-- One row per reconciler run: the provider window it read (the next run starts where this one
-- ended, less an overlap), what it found and repaired by kind. The scheduled function and
-- `admin reconcile` both write it.
CREATE TABLE reconciler_runs (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    started_at      timestamptz NOT NULL,
    finished_at     timestamptz NOT NULL,
    window_start    timestamptz NOT NULL,
    window_end      timestamptz NOT NULL,
    orders_checked  integer NOT NULL,
    provider_calls  integer NOT NULL,
    findings        jsonb NOT NULL,
    repaired        jsonb NOT NULL,
    CHECK (window_start <= window_end)
);
CREATE INDEX reconciler_runs_finished_idx ON reconciler_runs (finished_at DESC);
