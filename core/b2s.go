package core

import "unsafe"

// b2s converts a byte slice to a string without copying. The string must
// not outlive the bytes, and the bytes must not change while it is used.
func b2s(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// s2b converts a string to a byte slice without copying. The result must
// never be written to.
func s2b(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}
