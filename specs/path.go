package specs

import (
	"strconv"
	"strings"
)

// joinPath appends a field name to a dotted field path.
func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// indexPath appends a list index: "containers[0]".
func indexPath(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// keyPath appends a map key: "labels[app]"; keys that are plain identifiers
// are still bracketed so paths stay unambiguous with dotted keys such as
// "app.kubernetes.io/name".
func keyPath(path, key string) string {
	return path + "[" + key + "]"
}

// pathSegment is one step of a field path: a field name, or a bracketed list
// index or map key.
type pathSegment struct {
	name    string
	bracket bool
}

// splitPath parses a field path built by joinPath, indexPath and keyPath.
func splitPath(path string) []pathSegment {
	var segs []pathSegment
	for len(path) > 0 {
		switch path[0] {
		case '.':
			path = path[1:]
		case '[':
			end := strings.IndexByte(path, ']')
			if end < 0 {
				return append(segs, pathSegment{name: path[1:], bracket: true})
			}
			segs = append(segs, pathSegment{name: path[1:end], bracket: true})
			path = path[end+1:]
		default:
			end := strings.IndexAny(path, ".[")
			if end < 0 {
				end = len(path)
			}
			segs = append(segs, pathSegment{name: path[:end]})
			path = path[end:]
		}
	}
	return segs
}
