package vss

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"ldkbackup/internal/vsspb"
)

// TestResponseFrameIsWhatMarshalWrites: the framing a getObject sends
// before a value, then the value, are byte for byte what proto.Marshal
// writes for the whole GetObjectResponse, for empty and non-empty keys and
// values, versions of every varint length, and values whose length needs
// one to four varint bytes.
func TestResponseFrameIsWhatMarshalWrites(t *testing.T) {
	t.Parallel()
	for _, key := range []string{"", "k", "global_version", string(bytes.Repeat([]byte("é"), 600))} {
		for _, version := range []int64{0, 1, 127, 128, 1 << 40, -1, 1<<63 - 1} {
			for _, size := range []int{0, 1, 127, 128, 16383, 16384, 2_100_000} {
				value := bytes.Repeat([]byte{7}, size)
				want, err := proto.Marshal(&vsspb.GetObjectResponse{Value: &vsspb.KeyValue{Key: key, Version: version, Value: value}})
				require.NoError(t, err)
				got := append(responseFrame(key, version, int64(size)), value...)
				require.True(t, bytes.Equal(want, got), "key of %d bytes, version %d, value of %d bytes", len(key), version, size)
			}
		}
	}
}
