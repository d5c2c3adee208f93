// Package notify tells the webhooks in notify.webhooks about rollbacks and
// changes: the events (rollback_started, rollback_complete, rollback_failed,
// undo_started, undo_complete, undo_failed, change_started, change_complete,
// change_failed, test), their payload for each kind of webhook (generic, slack,
// statuspage) and their delivery with bounded retries.
//
// Delivery never fails a run and never prints a secret: a webhook's URL is
// shown as scheme://host only (appconfig.RedactWebhookURL), because paths and
// queries of webhook URLs are tokens. Retries go through
// github.com/hashicorp/go-retryablehttp with this package's policy: each
// attempt bounded by notify.timeout, at most 1+notify.retries attempts,
// exponential backoff with jitter, a 429/503 Retry-After honoured up to
// MaxRetryAfter, other 4xx than 408 and 429 not retried, and every wait ended
// at once by the context (Ctrl-C).
package notify
