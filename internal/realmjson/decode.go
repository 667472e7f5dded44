package realmjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
)

// PathError reports malformed input at one place of the document. Path is a
// JSON path such as "users[3].credentials[0].secretData" ("" for the
// document as a whole).
type PathError struct {
	Path string
	Msg  string
}

// Error returns the path and the message, as "path: msg".
func (e *PathError) Error() string { return e.Path + ": " + e.Msg }

// parser collects what the walk over a document learns besides the result:
// the paths of fields gatehouse does not interpret.
type parser struct {
	unknown []string
}

// object is one JSON object being read. Every key read through it is marked
// as known; close reports the rest as unknown. The first error sticks, so a
// caller reads every field and checks once.
type object struct {
	p    *parser
	path string
	m    map[string]json.RawMessage
	seen map[string]bool
	err  error
}

// object decodes raw as a JSON object; null reads as an empty object.
func (p *parser) object(path string, raw json.RawMessage) (*object, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, &PathError{Path: path, Msg: "expected an object"}
	}
	return &object{p: p, path: path, m: m, seen: map[string]bool{}}, nil
}

// array decodes raw as a JSON array; null reads as an empty array.
func array(path string, raw json.RawMessage) ([]json.RawMessage, error) {
	var a []json.RawMessage
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, &PathError{Path: path, Msg: "expected an array"}
	}
	return a, nil
}

// keyPath appends an object key to a path: ".key" for plain names, a quoted
// ["key"] for names that would make the path ambiguous.
func keyPath(path, key string) string {
	plain := key != ""
	for _, c := range key {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			plain = false
			break
		}
	}
	switch {
	case !plain:
		return path + "[" + strconv.Quote(key) + "]"
	case path == "":
		return key
	default:
		return path + "." + key
	}
}

// indexPath appends an array index to a path.
func indexPath(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

func isNull(raw json.RawMessage) bool {
	return bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

// get returns the raw value of key and marks key as known. A null value
// counts as absent, as Keycloak's own reader treats it.
func (o *object) get(key string) (json.RawMessage, bool) {
	o.seen[key] = true
	v, ok := o.m[key]
	if !ok || isNull(v) {
		return nil, false
	}
	return v, true
}

// has reports whether key is present and not null, without marking it.
func (o *object) has(key string) bool {
	v, ok := o.m[key]
	return ok && !isNull(v)
}

// ignore marks keys as known without reading them: fields that Keycloak
// derives from others (clientRole, containerId) or that carry nothing
// gatehouse keeps.
func (o *object) ignore(keys ...string) {
	for _, k := range keys {
		o.seen[k] = true
	}
}

func (o *object) fail(key, msg string) {
	if o.err == nil {
		o.err = &PathError{Path: keyPath(o.path, key), Msg: msg}
	}
}

// setErr keeps err as the object's error unless one is already set.
func (o *object) setErr(err error) {
	if o.err == nil && err != nil {
		o.err = err
	}
}

func (o *object) str(key string, dst *string) bool {
	raw, ok := o.get(key)
	if !ok {
		return false
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		o.fail(key, "expected a string")
		return false
	}
	return true
}

func (o *object) boolean(key string, dst *bool) bool {
	raw, ok := o.get(key)
	if !ok {
		return false
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		o.fail(key, "expected true or false")
		return false
	}
	return true
}

func (o *object) int64(key string, dst *int64) bool {
	raw, ok := o.get(key)
	if !ok {
		return false
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		o.fail(key, "expected an integer")
		return false
	}
	return true
}

func (o *object) integer(key string, dst *int) bool {
	var v int64
	if !o.int64(key, &v) {
		return false
	}
	if int64(int(v)) != v {
		o.fail(key, "integer out of range")
		return false
	}
	*dst = int(v)
	return true
}

// strings reads an array of strings; an empty array reads as nil so that
// absent and empty compare equal after a round trip.
func (o *object) strings(key string, dst *[]string) bool {
	raw, ok := o.get(key)
	if !ok {
		return false
	}
	var v []string
	if err := json.Unmarshal(raw, &v); err != nil {
		o.fail(key, "expected an array of strings")
		return false
	}
	if len(v) == 0 {
		v = nil
	}
	*dst = v
	return true
}

// stringMap reads an object of string values (client and client-scope
// attributes); empty reads as nil.
func (o *object) stringMap(key string, dst *map[string]string) bool {
	raw, ok := o.get(key)
	if !ok {
		return false
	}
	var v map[string]string
	if err := json.Unmarshal(raw, &v); err != nil {
		o.fail(key, "expected an object of strings")
		return false
	}
	if len(v) == 0 {
		v = nil
	}
	*dst = v
	return true
}

// listMap reads an object whose values are arrays of strings (user, role and
// organization attributes, client roles). A bare string value is taken as a
// one-element array, as Keycloak's own StringListMapDeserializer does.
func (o *object) listMap(key string, dst *map[string][]string) bool {
	raw, ok := o.get(key)
	if !ok {
		return false
	}
	v, err := decodeListMap(keyPath(o.path, key), raw)
	if err != nil {
		o.setErr(err)
		return false
	}
	*dst = v
	return true
}

func decodeListMap(path string, raw json.RawMessage) (map[string][]string, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, &PathError{Path: path, Msg: "expected an object of string arrays"}
	}
	if len(m) == 0 {
		return nil, nil
	}
	out := make(map[string][]string, len(m))
	for k, v := range m {
		if isNull(v) {
			out[k] = nil
			continue
		}
		var one string
		if err := json.Unmarshal(v, &one); err == nil {
			out[k] = []string{one}
			continue
		}
		var list []string
		if err := json.Unmarshal(v, &list); err != nil {
			return nil, &PathError{Path: keyPath(path, k), Msg: "expected an array of strings"}
		}
		if len(list) == 0 {
			list = nil
		}
		out[k] = list
	}
	return out, nil
}

// unknownKeys lists, sorted, the keys nobody read.
func (o *object) unknownKeys() []string {
	var ks []string
	for k := range o.m {
		if !o.seen[k] {
			ks = append(ks, k)
		}
	}
	sort.Strings(ks)
	return ks
}

// close records the keys nobody read as unknown and returns the first
// error met while reading.
func (o *object) close() error {
	for _, k := range o.unknownKeys() {
		o.p.unknown = append(o.p.unknown, keyPath(o.path, k))
	}
	return o.err
}

// syntaxError turns the error of decoding the whole document into a
// PathError that says where the document breaks.
func syntaxError(data []byte, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		// Offset counts the bytes read, the offending one included.
		at := se.Offset - 1
		if at < 0 {
			at = 0
		}
		line, col := lineCol(data, at)
		return &PathError{Msg: fmt.Sprintf("invalid JSON at byte %d (line %d, column %d): %s", at, line, col, se.Error())}
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return &PathError{Msg: "expected a JSON object (a realm representation)"}
	}
	return &PathError{Msg: "invalid JSON: " + err.Error()}
}

// lineCol converts a byte offset into a 1-based line and column.
func lineCol(data []byte, off int64) (line, col int) {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	if off < 0 {
		off = 0
	}
	before := data[:off]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(off) - (bytes.LastIndexByte(before, '\n') + 1) + 1
	return line, col
}
