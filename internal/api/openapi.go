package api

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"sync"
)

// The OpenAPI document is written by hand, as the contract it is, in one
// fragment per resource group (openapi/*.json): base.json holds the
// document's head and the shared components, every other fragment adds
// its "paths" and "components". Document merges them, refusing a path,
// operation or component defined twice. Tests check the result against
// the route table (every route documented, every documented operation
// routed), validate it with an OpenAPI 3.1 validator, and validate real
// responses against it.
//
//go:embed openapi/*.json
var openAPIFiles embed.FS

// Document returns the merged OpenAPI 3.1 document as JSON.
var Document = sync.OnceValues(func() ([]byte, error) { return mergeOpenAPI(openAPIFiles) })

func mergeOpenAPI(fsys fs.FS) ([]byte, error) {
	names, err := fs.Glob(fsys, "openapi/*.json")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var doc map[string]any
	if err := readJSON(fsys, "openapi/base.json", &doc); err != nil {
		return nil, err
	}
	paths := mapAt(doc, "paths")
	components := mapAt(doc, "components")
	for _, name := range names {
		if name == "openapi/base.json" {
			continue
		}
		var frag map[string]any
		if err := readJSON(fsys, name, &frag); err != nil {
			return nil, err
		}
		for k := range frag {
			if k != "paths" && k != "components" {
				return nil, fmt.Errorf("%s: only paths and components belong in a fragment, not %q", name, k)
			}
		}
		for p, ops := range mapAt(frag, "paths") {
			have := mapAt(paths, p)
			opsMap, ok := ops.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s: paths.%s is not an object", name, p)
			}
			for m, op := range opsMap {
				if _, dup := have[m]; dup {
					return nil, fmt.Errorf("%s: %s %s is already documented", name, m, p)
				}
				have[m] = op
			}
		}
		for kind, defs := range mapAt(frag, "components") {
			have := mapAt(components, kind)
			defsMap, ok := defs.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s: components.%s is not an object", name, kind)
			}
			for n, def := range defsMap {
				if _, dup := have[n]; dup {
					return nil, fmt.Errorf("%s: components.%s.%s is already defined", name, kind, n)
				}
				have[n] = def
			}
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func readJSON(fsys fs.FS, name string, v any) error {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return fmt.Errorf("reading %s: %w", path.Base(name), err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path.Base(name), err)
	}
	return nil
}

// mapAt returns m[key] as an object, creating it when absent.
func mapAt(m map[string]any, key string) map[string]any {
	if v, ok := m[key].(map[string]any); ok {
		return v
	}
	v := map[string]any{}
	m[key] = v
	return v
}
