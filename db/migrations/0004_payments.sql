-- Real payments (issue 22): authorise at processing, capture at fulfilment, void on cancel,
-- refund after capture. Expand only: the columns added have defaults that describe every
-- existing row (simulator, USD, the charge recorded as authorised and captured), and
-- payments.outcome stays, written as before, until a later migration contracts it.

ALTER TABLE orders
    ADD COLUMN currency text NOT NULL DEFAULT 'usd' CHECK (currency ~ '^[a-z]{3}$'),
    ADD COLUMN payment_method text CHECK (length(payment_method) BETWEEN 1 AND 255);

-- REFUNDED: everything captured was refunded (a final status).
ALTER TABLE orders DROP CONSTRAINT orders_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_status_check CHECK (status IN (
    'PENDING', 'PROCESSING', 'PAYMENT_CONFIRMED', 'PAYMENT_FAILED',
    'FULFILLED', 'COMPLETED', 'CANCELLED', 'REFUNDED'));

-- One payment per order (the primary key). Amounts in the currency's minor units, exactly.
-- `status` is the provider-side lifecycle; an *ING status is an intent committed before the
-- provider call, so whoever finds it (a redelivery, a retried request) repeats that call
-- under the same idempotency key and records its answer.
ALTER TABLE payments
    ADD COLUMN provider text NOT NULL DEFAULT 'simulator',
    ADD COLUMN currency text NOT NULL DEFAULT 'usd',
    ADD COLUMN amount_minor bigint CHECK (amount_minor >= 0),
    ADD COLUMN authorized_minor bigint NOT NULL DEFAULT 0 CHECK (authorized_minor >= 0),
    ADD COLUMN captured_minor bigint NOT NULL DEFAULT 0 CHECK (captured_minor >= 0),
    ADD COLUMN refunded_minor bigint NOT NULL DEFAULT 0 CHECK (refunded_minor >= 0),
    ADD COLUMN status text NOT NULL DEFAULT 'AUTHORIZING' CHECK (status IN (
        'AUTHORIZING', 'AUTHORIZED', 'DECLINED',
        'CAPTURING', 'CAPTURED', 'CAPTURE_FAILED',
        'VOIDING', 'VOIDED')),
    ADD COLUMN authorize_key text,
    ADD COLUMN capture_key text,
    ADD COLUMN void_key text,
    ADD COLUMN failure_message text,
    ADD CONSTRAINT payments_captured_le_authorized CHECK (captured_minor <= authorized_minor),
    ADD CONSTRAINT payments_refunded_le_captured CHECK (refunded_minor <= captured_minor);

-- Rows written before this migration: the simulator charged in one step.
UPDATE payments SET
    amount_minor = (amount * 100)::bigint,
    status = CASE outcome WHEN 'CHARGED' THEN 'CAPTURED'
                          WHEN 'DECLINED' THEN 'DECLINED' ELSE 'AUTHORIZING' END,
    authorized_minor = CASE outcome WHEN 'CHARGED' THEN (amount * 100)::bigint ELSE 0 END,
    captured_minor = CASE outcome WHEN 'CHARGED' THEN (amount * 100)::bigint ELSE 0 END,
    authorize_key = 'order-' || order_id::text;

-- Refunds: each is its own provider operation with its own idempotency key. `request_key`
-- (the client's Idempotency-Key, unique when given) and `request_hash` replay a repeated
-- POST. The refunded total never exceeds the captured one (checked under the payment row's
-- lock when a refund is created; payments.refunded_minor counts the succeeded ones).
CREATE TABLE refunds (
    refund_id       uuid PRIMARY KEY,
    order_id        uuid NOT NULL REFERENCES payments (order_id) ON DELETE CASCADE,
    amount_minor    bigint NOT NULL CHECK (amount_minor > 0),
    currency        text NOT NULL,
    reason          text CHECK (length(reason) <= 500),
    status          text NOT NULL CHECK (status IN ('PENDING', 'SUCCEEDED', 'FAILED')),
    provider_key    text NOT NULL UNIQUE,
    provider_ref    text,
    failure_message text,
    request_key     text UNIQUE,
    request_hash    text,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX refunds_order_idx ON refunds (order_id, created_at);
