-- Orders, their items and status history, idempotency keys, the transactional outbox,
-- payment attempts. Money is NUMERIC(12,2); statuses are checked by the database too.

CREATE TABLE orders (
    order_id            uuid PRIMARY KEY,
    customer_email      text NOT NULL CHECK (length(customer_email) BETWEEN 3 AND 254),
    customer_name       text NOT NULL CHECK (length(customer_name) BETWEEN 1 AND 200),
    total_amount        numeric(12, 2) NOT NULL CHECK (total_amount >= 0),
    status              text NOT NULL CHECK (status IN (
                            'PENDING', 'PROCESSING', 'PAYMENT_CONFIRMED', 'PAYMENT_FAILED',
                            'FULFILLED', 'COMPLETED', 'CANCELLED')),
    payment_started_at  timestamptz,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL
);

-- Newest first with order_id as the tie-break: serves unfiltered, status and email listings,
-- and keyset (cursor) pagination.
CREATE INDEX orders_created_idx ON orders (created_at DESC, order_id DESC);
CREATE INDEX orders_status_created_idx ON orders (status, created_at DESC, order_id DESC);
CREATE INDEX orders_email_created_idx ON orders (customer_email, created_at DESC, order_id DESC);

CREATE TABLE order_items (
    order_id      uuid NOT NULL REFERENCES orders (order_id) ON DELETE CASCADE,
    line_no       integer NOT NULL,
    product_name  text NOT NULL CHECK (length(product_name) BETWEEN 1 AND 200),
    quantity      integer NOT NULL CHECK (quantity BETWEEN 1 AND 10000),
    unit_price    numeric(12, 2) NOT NULL CHECK (unit_price >= 0),
    PRIMARY KEY (order_id, line_no)
);

-- The lifecycle is acyclic, so a status appears at most once per order: the unique key makes
-- a duplicated history row impossible even under concurrent redelivery.
CREATE TABLE order_status_history (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id    uuid NOT NULL REFERENCES orders (order_id) ON DELETE CASCADE,
    status      text NOT NULL,
    reason      text,
    changed_at  timestamptz NOT NULL,
    UNIQUE (order_id, status)
);

CREATE TABLE idempotency_keys (
    idempotency_key  text PRIMARY KEY,
    request_hash     text NOT NULL,
    order_id         uuid NOT NULL,
    response_status  integer NOT NULL,
    response_body    text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);

-- Transactional outbox: written in the same transaction as the state it announces.
-- kind 'order' goes to the processing queue, 'notification' to SES + SNS.
CREATE TABLE outbox (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind          text NOT NULL CHECK (kind IN ('order', 'notification')),
    order_id      uuid NOT NULL,
    status        text NOT NULL,
    payload       jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz,
    attempts      integer NOT NULL DEFAULT 0,
    last_error    text,
    UNIQUE (kind, order_id, status)
);
CREATE INDEX outbox_unpublished_idx ON outbox (id) WHERE published_at IS NULL;

-- One payment per order: the row is the idempotency record for the charge.
CREATE TABLE payments (
    order_id        uuid PRIMARY KEY REFERENCES orders (order_id) ON DELETE CASCADE,
    amount          numeric(12, 2) NOT NULL,
    outcome         text NOT NULL CHECK (outcome IN ('PENDING', 'CHARGED', 'DECLINED')),
    provider_ref    text,
    decline_reason  text,
    attempts        integer NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
