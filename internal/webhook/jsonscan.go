package webhook

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// This file is a small reader for JSON text that json.Valid has already accepted.
// encoding/json cannot report duplicate keys, and decoding into maps or
// interfaces allocates for every value; walking the validated bytes lets us see
// every key exactly as sent and hand out values as sub-slices of the input.
// Every function stays inside the slice bounds even on invalid input, so a
// mistake here degrades into a rejection, never a panic.

// maxNesting bounds how deep checkDuplicates recurses. A transfer resource is
// three levels deep; anything far deeper is not something Interlace sends.
const maxNesting = 32

// errTooDeep is returned by checkDuplicates for absurdly nested documents.
var errTooDeep = errors.New("nested deeper than 32 levels")

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// scanString expects b[i] == '"' and returns the index just past the closing
// quote, and whether the string holds an escape sequence.
func scanString(b []byte, i int) (end int, escaped bool) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			escaped = true
			j++
		case '"':
			return j + 1, escaped
		}
	}
	return len(b), escaped
}

// scanValue returns the index just past the value that starts at b[i].
func scanValue(b []byte, i int) int {
	if i >= len(b) {
		return len(b)
	}
	switch b[i] {
	case '"':
		end, _ := scanString(b, i)
		return end
	case '{', '[':
		depth := 0
		for j := i; j < len(b); {
			switch b[j] {
			case '"':
				j, _ = scanString(b, j)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
			j++
		}
		return len(b)
	default: // number, true, false, null
		j := i
		for j < len(b) {
			c := b[j]
			if c == ',' || c == '}' || c == ']' || isSpace(c) {
				break
			}
			j++
		}
		return j
	}
}

// valueKind classifies a raw JSON value by its first byte.
type valueKind int

const (
	kindAbsent valueKind = iota
	kindNull
	kindString
	kindNumber
	kindBool
	kindObject
	kindArray
)

func kindOf(v []byte) valueKind {
	if len(v) == 0 {
		return kindAbsent
	}
	switch c := v[0]; {
	case c == '"':
		return kindString
	case c == '{':
		return kindObject
	case c == '[':
		return kindArray
	case c == 'n':
		return kindNull
	case c == 't' || c == 'f':
		return kindBool
	default:
		return kindNumber
	}
}

func (k valueKind) String() string {
	switch k {
	case kindAbsent:
		return "absent"
	case kindNull:
		return "null"
	case kindString:
		return "a string"
	case kindNumber:
		return "a number"
	case kindBool:
		return "a boolean"
	case kindObject:
		return "an object"
	default:
		return "an array"
	}
}

// objectIter walks the members of one JSON object. key is the raw key including
// its quotes; val is the raw value.
type objectIter struct {
	b []byte
	i int
}

// newObjectIter starts at the first non-space byte of b, which must be '{'.
func newObjectIter(b []byte) (objectIter, bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return objectIter{}, false
	}
	return objectIter{b: b, i: i + 1}, true
}

func (it *objectIter) next() (key, val []byte, ok bool) {
	b := it.b
	i := skipSpace(b, it.i)
	if i < len(b) && b[i] == ',' {
		i = skipSpace(b, i+1)
	}
	if i >= len(b) || b[i] != '"' {
		it.i = len(b)
		return nil, nil, false
	}
	kEnd, _ := scanString(b, i)
	key = b[i:kEnd]
	i = skipSpace(b, kEnd)
	if i >= len(b) || b[i] != ':' {
		it.i = len(b)
		return nil, nil, false
	}
	i = skipSpace(b, i+1)
	vEnd := scanValue(b, i)
	if vEnd <= i {
		it.i = len(b)
		return nil, nil, false
	}
	it.i = vEnd
	return key, b[i:vEnd], true
}

// arrayIter walks the elements of one JSON array.
type arrayIter struct {
	b []byte
	i int
}

func newArrayIter(b []byte) (arrayIter, bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '[' {
		return arrayIter{}, false
	}
	return arrayIter{b: b, i: i + 1}, true
}

func (it *arrayIter) next() (val []byte, ok bool) {
	b := it.b
	i := skipSpace(b, it.i)
	if i < len(b) && b[i] == ',' {
		i = skipSpace(b, i+1)
	}
	if i >= len(b) || b[i] == ']' {
		it.i = len(b)
		return nil, false
	}
	end := scanValue(b, i)
	if end <= i {
		it.i = len(b)
		return nil, false
	}
	it.i = end
	return b[i:end], true
}

// keyText returns the decoded text of a raw key. Unescaped keys (the normal
// case) are returned as a sub-slice without allocating.
func keyText(raw []byte) []byte {
	if len(raw) < 2 {
		return nil
	}
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return inner
	}
	return appendUnescaped(make([]byte, 0, len(inner)), inner)
}

// unquote returns the decoded text of a raw JSON string value (with quotes).
func unquote(raw []byte) string {
	if len(raw) < 2 {
		return ""
	}
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return string(inner)
	}
	return string(appendUnescaped(make([]byte, 0, len(inner)), inner))
}

// appendUnescaped decodes JSON escapes exactly as encoding/json does, including
// its treatment of unpaired surrogates (each becomes U+FFFD), so that the text we
// verify and classify is the text any Go JSON decoder would produce.
func appendUnescaped(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			dst = append(dst, c)
			i++
			continue
		}
		if i+1 >= len(s) {
			return dst
		}
		switch s[i+1] {
		case '"', '\\', '/':
			dst = append(dst, s[i+1])
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hex4(s[i:])
			if r < 0 {
				return dst
			}
			i += 6
			if utf16.IsSurrogate(r) {
				if r2 := hex4(s[i:]); r2 >= 0 {
					if dec := utf16.DecodeRune(r, r2); dec != unicode.ReplacementChar {
						dst = utf8.AppendRune(dst, dec)
						i += 6
						continue
					}
				}
				r = unicode.ReplacementChar
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default:
			return dst
		}
		i += 2
	}
	return dst
}

// hex4 decodes a `\uXXXX` sequence at the start of s, or returns -1.
func hex4(s []byte) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range s[2:6] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// keyIs reports whether a decoded key names field, with the matching rules of
// encoding/json (case-insensitive, Unicode simple folding). Duplicate keys under
// the same rule are rejected before any field is read, so at most one key can
// match and the choice never depends on the order of the members.
func keyIs(key []byte, field string) bool {
	for _, c := range key {
		if c >= utf8.RuneSelf {
			return strings.EqualFold(string(key), field)
		}
	}
	return asciiEqualFold(key, field)
}

// asciiEqualFold compares ASCII case-insensitively; non-ASCII never matches.
// Used for values (types, statuses) so that look-alike letters such as 'ſ'
// (which Unicode folds to 's') cannot pass for a keyword.
func asciiEqualFold[T ~string | ~[]byte](a T, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(b); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// keySet detects keys that encoding/json would treat as the same field.
// Small objects compare pairwise without allocating; big ones switch to a map of
// canonical case-folded keys so that a hostile body cannot make this quadratic.
type keySet struct {
	small [16][]byte
	n     int
	big   map[string]struct{}
}

// add records k and reports whether an equivalent key was already present.
func (s *keySet) add(k []byte) (dup bool) {
	if s.big != nil {
		c := canonFold(k)
		if _, ok := s.big[c]; ok {
			return true
		}
		s.big[c] = struct{}{}
		return false
	}
	for _, o := range s.small[:s.n] {
		if bytes.EqualFold(o, k) {
			return true
		}
	}
	if s.n < len(s.small) {
		s.small[s.n] = k
		s.n++
		return false
	}
	s.big = make(map[string]struct{}, 2*len(s.small))
	for _, o := range s.small {
		s.big[canonFold(o)] = struct{}{}
	}
	s.big[canonFold(k)] = struct{}{}
	return false
}

// canonFold maps every rune to the smallest rune of its simple case-folding
// orbit, so that two keys are bytes.EqualFold-equal iff their canonFold forms are
// equal.
func canonFold(k []byte) string {
	var sb strings.Builder
	sb.Grow(len(k))
	for _, r := range string(k) {
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < m {
				m = f
			}
		}
		sb.WriteRune(m)
	}
	return sb.String()
}

// checkDuplicates rejects a value in which any object, at any depth, has two keys
// that a JSON decoder could confuse: such a document means different things to
// different parsers.
func checkDuplicates(v []byte, depth int) error {
	i := skipSpace(v, 0)
	if i >= len(v) {
		return nil
	}
	switch v[i] {
	case '{':
		if depth >= maxNesting {
			return errTooDeep
		}
		it, _ := newObjectIter(v)
		var seen keySet
		for key, val, ok := it.next(); ok; key, val, ok = it.next() {
			k := keyText(key)
			if seen.add(k) {
				return fmt.Errorf("%w %s", ErrDuplicateKey, quoteShort(string(k)))
			}
			if c := val[0]; c == '{' || c == '[' {
				if err := checkDuplicates(val, depth+1); err != nil {
					return err
				}
			}
		}
	case '[':
		if depth >= maxNesting {
			return errTooDeep
		}
		it, _ := newArrayIter(v)
		for val, ok := it.next(); ok; val, ok = it.next() {
			if c := val[0]; c == '{' || c == '[' {
				if err := checkDuplicates(val, depth+1); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// quoteShort quotes s for an error message, cut to a readable length. %q escapes
// control and invisible characters, so a hostile value cannot forge log lines.
func quoteShort(s string) string {
	const limit = 48
	if len(s) <= limit {
		return fmt.Sprintf("%q", s)
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%q…(%d bytes)", s[:cut], len(s))
}
