-- Clients of the OpenAI-compatible API that resend the whole history each
-- turn (Open WebUI) do not send a conversation id. The fingerprint of the
-- transcript such a client has seen lets the next request find and continue
-- the same stored conversation instead of starting a copy.

ALTER TABLE conversations ADD COLUMN client_fingerprint TEXT;

CREATE INDEX conversations_client_fingerprint_idx ON conversations (client_fingerprint);
