package console

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"html/template"
	"time"
	"unicode/utf8"

	"github.com/shopspring/decimal"
)

// pageNames are the templates under templates/, each executed inside layout.html.
var pageNames = []string{"signin", "error", "deposits", "deposit", "withdrawals", "withdrawal", "reconciliation"}

func parsePages() (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"when":    when,
		"str":     str,
		"dec":     dec,
		"utf8":    utf8.Valid,
		"text":    func(b []byte) string { return string(b) },
		"hexdump": hexdump,
		"sha256":  func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) },
		"dict":    dict,
		"ms":      func(d time.Duration) string { return d.Round(time.Millisecond).String() },
	}
	out := make(map[string]*template.Template, len(pageNames))
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}

// when formats a time (or *time.Time; nil is a dash) in UTC to the second.
func when(v any) string {
	switch t := v.(type) {
	case time.Time:
		return t.UTC().Format("2006-01-02 15:04:05Z")
	case *time.Time:
		if t != nil {
			return t.UTC().Format("2006-01-02 15:04:05Z")
		}
	}
	return "—"
}

// str dereferences an optional string (nil or empty is a dash).
func str(v any) string {
	switch s := v.(type) {
	case string:
		if s != "" {
			return s
		}
	case *string:
		if s != nil && *s != "" {
			return *s
		}
	case *int16:
		if s != nil {
			return fmt.Sprint(*s)
		}
	case *int:
		if s != nil {
			return fmt.Sprint(*s)
		}
	case fmt.Stringer:
		return s.String()
	}
	return "—"
}

// dec prints an amount exactly as stored (never through a float).
func dec(v any) string {
	switch d := v.(type) {
	case decimal.Decimal:
		return d.String()
	case *decimal.Decimal:
		if d != nil {
			return d.String()
		}
	}
	return "—"
}

// hexdump shows bytes that are not UTF-8 text, 16 a line, so nothing is lost
// or reinterpreted on the way to the screen.
func hexdump(b []byte) string { return hex.Dump(b) }

// dict builds a map from alternating keys and values, to pass several values
// to a nested template.
func dict(kv ...any) (map[string]any, error) {
	if len(kv)%2 != 0 {
		return nil, fmt.Errorf("dict: odd number of arguments")
	}
	m := make(map[string]any, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		k, ok := kv[i].(string)
		if !ok {
			return nil, fmt.Errorf("dict: key %v is not a string", kv[i])
		}
		m[k] = kv[i+1]
	}
	return m, nil
}
