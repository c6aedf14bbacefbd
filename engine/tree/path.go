package tree

import (
	"strings"
	"unicode/utf8"
)

// validatePath reports whether path is a valid znode path by ZooKeeper's
// rules (PathUtils.validatePath): it starts with '/', does not end with '/'
// (except the root), has no empty, "." or ".." component, no NUL and none of
// the characters ZooKeeper disallows: U+0001–U+001F, U+007F–U+009F,
// U+D800–U+F8FF, U+FFF0–U+FFFF, anything beyond the BMP (Java sees
// surrogates there) and invalid UTF-8 (which Java decodes as U+FFFD).
func validatePath(path string) bool {
	if path == "" || path[0] != '/' {
		return false
	}
	if len(path) == 1 {
		return true
	}
	if path[len(path)-1] == '/' {
		return false
	}
	// Components: split and check each; the rune checks go over the whole.
	for comp := range strings.SplitSeq(path[1:], "/") {
		if comp == "" || comp == "." || comp == ".." {
			return false
		}
	}
	for i := 1; i < len(path); {
		r, size := utf8.DecodeRuneInString(path[i:])
		i += size
		switch {
		case r == 0,
			r <= 0x1f,
			r >= 0x7f && r <= 0x9f,
			r >= 0xd800 && r <= 0xf8ff,
			r >= 0xfff0:
			return false
		}
	}
	return true
}

// splitPath returns the parent path and the last component of a path other
// than the root.
func splitPath(path string) (parent, name string) {
	i := strings.LastIndexByte(path, '/')
	if i <= 0 {
		return rootPath, path[i+1:]
	}
	return path[:i], path[i+1:]
}

// parentForWrite returns the parent path of a create or delete target as
// ZooKeeper derives it before full validation: the text before the last
// '/'. ok is false when there is no '/' or the path holds a NUL.
func parentForWrite(path string) (parent string, ok bool) {
	i := strings.LastIndexByte(path, '/')
	if i < 0 || strings.IndexByte(path, 0) >= 0 {
		return "", false
	}
	if i == 0 {
		return rootPath, true
	}
	return path[:i], true
}

// isSpecialPath reports whether path is one of the nodes of the initial
// tree, which clients may neither create nor delete.
func isSpecialPath(path string) bool {
	return path == rootPath || path == procPath || path == quotaPath || path == configPath
}
