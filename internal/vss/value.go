package vss

import (
	"context"
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protowire"
)

// Value is a getObject's reply in progress: the GetObjectResponse's bytes,
// a chunk at a time. The protobuf framing of the value (its length is known
// before any of it is read) comes first, then the value, read from the
// store a buffer at a time, each chunk in a query of its own, so a large
// value is never held whole and a slow client holds no connection.
type Value struct {
	store   Store
	id      ValueID
	size    int64 // of the value
	total   int64 // of the whole reply
	buf     []byte
	pending [][]byte // what is known and not yet returned: framing, then the head
	off     int64    // value bytes returned or pending so far
}

func newValue(store Store, v OpenedValue, buf []byte) *Value {
	frame := responseFrame(v.ID.Key, v.Version, v.Size)
	val := &Value{store: store, id: v.ID, size: v.Size, total: int64(len(frame)) + v.Size, buf: buf, pending: [][]byte{frame}}
	if len(v.Head) > 0 {
		val.pending = append(val.pending, v.Head)
		val.off = int64(len(v.Head))
	}
	return val
}

// ValueSize is the size of the value alone.
func (v *Value) ValueSize() int64 { return v.size }

// Size is the length of the whole reply in bytes.
func (v *Value) Size() int64 { return v.total }

// Next returns the reply's next chunk, valid until the next call, and
// io.EOF after the last. ErrValueChanged when the key was written or
// deleted since the first read: the bytes returned so far belong to the
// value first read, and the reply must be cut short.
func (v *Value) Next(ctx context.Context) ([]byte, error) {
	if len(v.pending) > 0 {
		p := v.pending[0]
		v.pending = v.pending[1:]
		return p, nil
	}
	if v.off >= v.size {
		return nil, io.EOF
	}
	n := min(int64(len(v.buf)), v.size-v.off)
	chunk, err := v.store.ReadVSSChunk(ctx, v.id, v.off, v.buf[:n])
	if err != nil {
		return nil, err
	}
	if int64(len(chunk)) != n {
		return nil, fmt.Errorf("vss get: chunk at byte %d has %d bytes, want %d", v.off, len(chunk), n)
	}
	v.off += n
	return chunk, nil
}

// Close ends the reply; a value holds nothing in the store.
func (v *Value) Close(context.Context) error { return nil }

// responseFrame is the start of a GetObjectResponse{value: KeyValue{key,
// version, value}} whose value has size bytes and follows it: the bytes
// proto.Marshal writes before the value (fields in number order, zero
// values left out, as proto3 does).
func responseFrame(key string, version, size int64) []byte {
	var inner []byte
	if key != "" {
		inner = protowire.AppendTag(inner, 1, protowire.BytesType)
		inner = protowire.AppendString(inner, key)
	}
	if version != 0 {
		inner = protowire.AppendTag(inner, 2, protowire.VarintType)
		inner = protowire.AppendVarint(inner, uint64(version))
	}
	if size > 0 {
		inner = protowire.AppendTag(inner, 3, protowire.BytesType)
		inner = protowire.AppendVarint(inner, uint64(size))
	}
	out := protowire.AppendTag(nil, 2, protowire.BytesType)
	out = protowire.AppendVarint(out, uint64(int64(len(inner))+size))
	return append(out, inner...)
}
