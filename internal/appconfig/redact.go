package appconfig

import (
	"net/url"
	"regexp"
	"strings"
	"sync"
)

// Redacted replaces a secret wherever cfrollback shows a value.
const Redacted = "[REDACTED]"

// secretName matches the last part of a key whose value is a credential:
// apiKey, api_key, token, authToken, secret, clientSecret, password... but
// not maxTokens.
var secretName = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`(?i)(api[-_]?key|secret|passw(or)?d|token$|credential|private[-_]?key|access[-_]?key|authorization)`)
})

// IsSecretKey reports whether a dotted key, or any object it is inside,
// is named like a credential.
func IsSecretKey(key string) bool {
	for _, part := range strings.Split(key, ".") {
		if secretName().MatchString(part) {
			return true
		}
	}
	return false
}

// RedactValue is v as it may be shown for key: secrets replaced, URLs
// without userinfo or secret query values, objects and arrays walked.
func RedactValue(key string, v any) any {
	if IsSecretKey(key) {
		if v == nil {
			return nil
		}
		return Redacted
	}
	switch x := v.(type) {
	case string:
		return RedactString(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = RedactValue(key+"."+k, e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = RedactValue(key, e)
		}
		return out
	}
	return v
}

// RedactString hides credentials inside a string that is, or contains, a
// URL: the password of user:password@ and the values of secret-looking
// query parameters.
func RedactString(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	return urlInText().ReplaceAllStringFunc(s, RedactURL)
}

var urlInText = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`[a-zA-Z][a-zA-Z0-9+.-]*://[^\s"']+`) })

// secretQuery matches query parameters that carry credentials.
var secretQuery = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?i)(key|token|secret|passw|sig|auth|credential)`) })

// RedactWebhookURL keeps what identifies a webhook (scheme and host) and hides what may be a
// secret: user info, the path (Slack and others put the token there) and the query.
func RedactWebhookURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(unparsable URL)"
	}
	s := u.Scheme + "://" + u.Host
	if u.Path != "" && u.Path != "/" {
		s += "/…"
	}
	if u.RawQuery != "" {
		s += "?…"
	}
	return s
}

// RedactURL is how every other URL is shown, printed, journaled or sent: it removes userinfo entirely (a user name can be a token too) and
// hides secret query values.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		if strings.Contains(raw, "@") {
			return Redacted
		}
		return raw
	}
	if u.User != nil {
		u.User = url.User("REDACTED")
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			if secretQuery().MatchString(k) {
				q[k] = []string{"REDACTED"}
			}
		}
		u.RawQuery = q.Encode()
	}
	return u.String()
}
