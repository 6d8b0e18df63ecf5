-- The webhook of a job in the status read model (projector), folded from the
-- notifier's WebhookDelivered / WebhookDeliveryFailed events, so a rebuild
-- reproduces it. All NULL for a job without a webhook or before its first attempt.
ALTER TABLE status_jobs ADD COLUMN webhook_state text;
ALTER TABLE status_jobs ADD COLUMN webhook_attempts integer;
ALTER TABLE status_jobs ADD COLUMN webhook_last_status integer;
ALTER TABLE status_jobs ADD COLUMN webhook_last_error text;
ALTER TABLE status_jobs ADD COLUMN webhook_next_attempt_at timestamptz;
ALTER TABLE status_jobs ADD COLUMN webhook_delivered_at timestamptz;

-- A redelivery (WebhookRedeliveryRequested) gives a delivery a fresh attempt
-- budget while its attempt counter keeps counting (one event per attempt, at
-- stream version attempt - 1): the retry schedule counts attempts after
-- `budget_from`, the value of `attempts` when the delivery was last re-armed.
ALTER TABLE webhook_deliveries ADD COLUMN budget_from integer NOT NULL DEFAULT 0;
