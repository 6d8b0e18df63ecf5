-- Per-project webhook signing secrets (owned by projects; read by the notifier),
-- and an optional expiry for API tokens.
--
-- A secret is Standard Webhooks' `whsec_` + base64 of the HMAC key; keys under
-- 24 bytes are refused here as well as in code. A project has one current secret
-- (expires_at NULL); a rotation gives the previous ones an expires_at (the
-- overlap) and adds a new current one. The notifier signs with every secret whose
-- expires_at is NULL or in the future.
CREATE TABLE project_webhook_secrets (
    id          bigserial PRIMARY KEY,
    project     text NOT NULL REFERENCES projects(name),
    secret      text NOT NULL CHECK (
        secret ~ '^whsec_[A-Za-z0-9+/]+={0,2}$'
        AND octet_length(decode(substr(secret, 7), 'base64')) >= 24
    ),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz
);
CREATE UNIQUE INDEX project_webhook_secrets_current_idx ON project_webhook_secrets (project)
    WHERE expires_at IS NULL;
CREATE INDEX project_webhook_secrets_project_idx ON project_webhook_secrets (project, created_at);

-- Every project that exists already gets its secret now, so an operator can show
-- it to the receiver before the first webhook signed with it goes out. The key is
-- two v4 UUIDs from gen_random_uuid() (PostgreSQL's strong random source, built in
-- since 13; pgcrypto is not assumed): 32 bytes carrying 244 random bits.
INSERT INTO project_webhook_secrets (project, secret)
SELECT name,
       'whsec_' || encode(
           decode(
               replace(gen_random_uuid()::text, '-', '') || replace(gen_random_uuid()::text, '-', ''),
               'hex'
           ),
           'base64'
       )
FROM projects;

ALTER TABLE api_tokens ADD COLUMN expires_at timestamptz;
