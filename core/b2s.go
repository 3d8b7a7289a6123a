package core

import "unsafe"

// b2s converts a byte slice to a string without copying. The string must
// not outlive the bytes, and the bytes must not change while it is used.
func b2s(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}
