-- Customer identity (issue 24): an order belongs to the subject (`sub`) of the token that
-- placed it. Expand only: a nullable column (orders placed with the API key have none) and the
-- index that keeps "my orders" newest first, cursor pages included, a keyset index scan.
ALTER TABLE orders ADD COLUMN customer_sub text CHECK (length(customer_sub) BETWEEN 1 AND 255);

CREATE INDEX orders_customer_sub_created_idx
    ON orders (customer_sub, created_at DESC, order_id DESC)
    WHERE customer_sub IS NOT NULL;
