// Package zbase32 implements the z-base-32 encoding used by LND's signmessage
// and LDK's UtilMethods.sign: 5 bits per character, most significant bit
// first, no padding.
package zbase32

import (
	"fmt"
	"strings"
)

// alphabet is z-base-32's human-oriented ordering (not RFC 4648's).
const alphabet = "ybndrfg8ejkmcpqxot1uwisza345h769"

// encodedLen is the number of characters Encode produces for n bytes.
func encodedLen(n int) int {
	return (n*8 + 4) / 5
}

// Encode returns the z-base-32 text of b. Any leftover bits of the last
// character are zero.
func Encode(b []byte) string {
	out := make([]byte, 0, encodedLen(len(b)))
	var acc uint // pending bits, right-aligned
	bits := 0    // how many bits acc holds
	for _, c := range b {
		acc = acc<<8 | uint(c)
		bits += 8
		for bits >= 5 {
			bits -= 5
			out = append(out, alphabet[(acc>>bits)&31])
		}
		acc &= 1<<bits - 1 // keep acc small
	}
	if bits > 0 {
		out = append(out, alphabet[(acc<<(5-bits))&31])
	}
	return string(out)
}

// Decode parses z-base-32 text. It accepts only what Encode can produce, so
// every byte string has exactly one accepted encoding: lowercase alphabet
// characters only, a length that some byte count encodes to, and zero
// leftover bits.
func Decode(s string) ([]byte, error) {
	n := len(s) * 5 / 8
	if encodedLen(n) != len(s) {
		return nil, fmt.Errorf("zbase32: invalid length %d", len(s))
	}
	out := make([]byte, 0, n)
	var acc uint
	bits := 0
	for i := 0; i < len(s); i++ {
		v := strings.IndexByte(alphabet, s[i])
		if v < 0 {
			return nil, fmt.Errorf("zbase32: invalid character %q at offset %d", s[i], i)
		}
		acc = acc<<5 | uint(v)
		bits += 5
		if bits >= 8 {
			bits -= 8
			out = append(out, byte(acc>>bits))
			acc &= 1<<bits - 1
		}
	}
	// The length check leaves fewer than 5 bits here; they must be the zero
	// padding Encode writes, or two strings would decode to the same bytes.
	if acc != 0 {
		return nil, fmt.Errorf("zbase32: non-zero trailing bits")
	}
	return out, nil
}
