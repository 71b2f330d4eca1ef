-- A notification record carries two deliveries: the operator event (SNS) and the customer
-- email (SES). Each is recorded on its own, so a refused email never publishes its event
-- again, and a record is marked sent as soon as SES accepted its email (not with its batch),
-- so a crash repeats at most the email in flight.
--   event_sent_at    SNS accepted the event; later attempts send the email only.
--   next_attempt_at  no relay takes the record before then: a lease while a relay sends it
--                    (a relay that dies releases it when the lease ends) and the backoff after
--                    a failed attempt.
--   given_up_at      the email was refused for good (or too often): the relay is done with
--                    the record (published_at is set too), the reason is in last_error.
-- Expand only: the previous release's code never reads these columns.
ALTER TABLE outbox ADD COLUMN event_sent_at timestamptz;
ALTER TABLE outbox ADD COLUMN next_attempt_at timestamptz;
ALTER TABLE outbox ADD COLUMN given_up_at timestamptz;
CREATE INDEX outbox_given_up_idx ON outbox (given_up_at) WHERE given_up_at IS NOT NULL;
