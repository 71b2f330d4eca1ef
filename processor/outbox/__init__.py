"""The outbox relay and sweeper: committed records delivered to SQS, SES and SNS."""
