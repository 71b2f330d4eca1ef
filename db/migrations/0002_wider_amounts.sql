-- Totals up to what the request limits allow (100 items x 10,000 x 1,000,000.00 =
-- 1,000,000,000,000.00): every order that passes the per-field rules of the published
-- OpenAPI document then fits, so none is refused for a total the document cannot express.
-- Raising a numeric's precision at the same scale rewrites no rows.
ALTER TABLE orders ALTER COLUMN total_amount TYPE numeric(15, 2);
ALTER TABLE payments ALTER COLUMN amount TYPE numeric(15, 2);
