package webhook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
)

func TestCanonFoldAgreesWithEqualFold(t *testing.T) {
	t.Parallel()
	words := []string{
		"resource", "Resource", "RESOURCE", "re\u017fource", "id", "ID", "iD", "\u212aey", "key", "KEY",
		"\u03c3", "\u03c2", "\u03a3", "\u01c4", "\u01c5", "\u01c6", "stra\u00dfe", "STRASSE", "\u0130d", "\u0131d",
		"\ufffd", "", "a", "A", "\u00b5", "\u039c", "\u03bc",
	}
	for _, a := range words {
		for _, b := range words {
			eq := bytes.EqualFold([]byte(a), []byte(b))
			if (canonFold([]byte(a)) == canonFold([]byte(b))) != eq {
				t.Errorf("%q vs %q: canonFold disagrees with EqualFold (%v)", a, b, eq)
			}
		}
	}
}

func TestKeySetSwitchesToMap(t *testing.T) {
	t.Parallel()
	var s keySet
	for i := 0; i < 100; i++ {
		if s.add([]byte(fmt.Sprintf("key%d", i))) {
			t.Fatalf("key%d reported as duplicate", i)
		}
	}
	if s.big == nil {
		t.Fatal("still comparing pairwise after 100 keys")
	}
	for _, k := range []string{"key0", "KEY15", "key16", "Key99", "\u212aey50"} {
		if !s.add([]byte(k)) {
			t.Errorf("%q not reported as duplicate", k)
		}
	}
	if s.add([]byte("key100")) {
		t.Error("new key reported as duplicate")
	}
}

func TestIteratorsOnMalformedInput(t *testing.T) {
	t.Parallel()
	// The iterators are only fed validated JSON, but must never read out of
	// bounds or loop forever if that ever changes.
	inputs := []string{"", "{", "{\"", "{\"a\"", "{\"a\":", "{\"a\":1", "{\"a\":\"\\", "[", "[1,", "{\"a\" 1}", "{1:2}", "{\"a\":}"}
	for _, in := range inputs {
		if it, ok := newObjectIter([]byte(in)); ok {
			for n := 0; n < 10; n++ {
				if _, _, ok := it.next(); !ok {
					break
				}
			}
		}
		if it, ok := newArrayIter([]byte(in)); ok {
			for n := 0; n < 10; n++ {
				if _, ok := it.next(); !ok {
					break
				}
			}
		}
		_ = checkDuplicates([]byte(in), 0)
		_ = keyText([]byte(in))
		_ = unquote([]byte(in))
	}
}

func TestObjectIterMembers(t *testing.T) {
	t.Parallel()
	in := []byte(` { "a" : 1 , "b":"x\"}" ,"c":{"d":[1,{"e":"]"}]},"f":[],"g":null,"h":-1.5e+3 } `)
	want := map[string]string{"a": `1`, "b": `"x\"}"`, "c": `{"d":[1,{"e":"]"}]}`, "f": `[]`, "g": `null`, "h": `-1.5e+3`}
	it, ok := newObjectIter(in)
	if !ok {
		t.Fatal("not an object")
	}
	got := map[string]string{}
	for k, v, ok := it.next(); ok; k, v, ok = it.next() {
		got[string(keyText(k))] = string(v)
		if !json.Valid(v) {
			t.Errorf("value %s is not a whole JSON value", v)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
}
