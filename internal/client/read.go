package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// List is the list reply: "<label>.bin" names and "<channelId>.bin" names.
type List struct {
	List            []string
	ChannelMonitors []string
}

// List asks which objects are stored. fileGroup "" omits the parameter
// (the server then defaults to ldk); the apps always send "ldk".
func (c *Client) List(ctx context.Context, fileGroup string) (List, error) {
	target := c.endpoint("list", "", "")
	if fileGroup != "" {
		target += "&fileGroup=" + url.QueryEscape(fileGroup)
	}
	resp, err := c.get(ctx, "list", target)
	if err != nil {
		return List{}, err
	}
	defer closeBody(resp)
	if resp.StatusCode != http.StatusOK {
		return List{}, statusError(resp)
	}
	// Pointers tell a missing or null array from an empty one: the Swift app
	// decodes both as non-optional [String] and fails on null.
	var reply struct {
		List            *[]string `json:"list"`
		ChannelMonitors *[]string `json:"channel_monitors"`
	}
	if err := readJSON(resp, &reply); err != nil {
		return List{}, fmt.Errorf("client: list: %w", err)
	}
	if reply.List == nil || reply.ChannelMonitors == nil {
		return List{}, errors.New("client: list: reply lacks list or channel_monitors (or has null)")
	}
	return List{List: *reply.List, ChannelMonitors: *reply.ChannelMonitors}, nil
}

// RetrieveEncrypted returns the stored bytes as the server sent them.
func (c *Client) RetrieveEncrypted(ctx context.Context, label, channelID string) ([]byte, error) {
	resp, err := c.get(ctx, "retrieve", c.endpoint("retrieve", label, channelID))
	if err != nil {
		return nil, err
	}
	defer closeBody(resp)
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return nil, fmt.Errorf("%w: %s %s", ErrNotFound, label, channelID)
	default:
		return nil, statusError(resp)
	}
	blob, err := readAll(resp)
	if err != nil {
		return nil, fmt.Errorf("client: retrieve: %w", err)
	}
	return blob, nil
}

// Retrieve returns the decrypted backup.
func (c *Client) Retrieve(ctx context.Context, label, channelID string) ([]byte, error) {
	blob, err := c.RetrieveEncrypted(ctx, label, channelID)
	if err != nil {
		return nil, err
	}
	plain, err := Decrypt(c.secret, blob)
	if err != nil {
		return nil, fmt.Errorf("client: retrieve %s %s: %w", label, channelID, err)
	}
	return plain, nil
}

// Backup is a complete restore, decrypted, keyed by the listed file names.
type Backup struct {
	Files        map[string][]byte // "<label>.bin"
	ChannelFiles map[string][]byte // "<channelId>.bin"
}

// Restore does what the apps' retrieveCompleteBackup does: list with
// fileGroup=ldk, then retrieve every file one by one. Like the apps it turns
// a file name into a label or channel id by deleting ".json" and ".bin"
// wherever they occur, and with IOSTimestamps it skips ping.bin as the Swift
// app does.
func (c *Client) Restore(ctx context.Context) (Backup, error) {
	list, err := c.List(ctx, "ldk")
	if err != nil {
		return Backup{}, err
	}
	b := Backup{
		Files:        make(map[string][]byte, len(list.List)),
		ChannelFiles: make(map[string][]byte, len(list.ChannelMonitors)),
	}
	for _, name := range list.List {
		if c.timestamps == IOSTimestamps && name == "ping.bin" {
			continue
		}
		label := strings.ReplaceAll(strings.ReplaceAll(name, ".json", ""), ".bin", "")
		data, err := c.Retrieve(ctx, label, "")
		if err != nil {
			return Backup{}, err
		}
		b.Files[name] = data
	}
	for _, name := range list.ChannelMonitors {
		data, err := c.Retrieve(ctx, "channel_monitor", strings.ReplaceAll(name, ".bin", ""))
		if err != nil {
			return Backup{}, err
		}
		b.ChannelFiles[name] = data
	}
	return b, nil
}

// maxPrealloc bounds the buffer readAll takes on a server's word.
const maxPrealloc = 64 << 20

// readAll reads a body into one buffer of its declared length: io.ReadAll
// grows its buffer from 512 bytes, so a 64 KiB backup cost eight copies.
// net/http reports a body shorter than its Content-Length as an error.
func readAll(resp *http.Response) ([]byte, error) {
	if resp.ContentLength < 0 || resp.ContentLength > maxPrealloc {
		return io.ReadAll(resp.Body)
	}
	buf := make([]byte, resp.ContentLength)
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		return nil, err
	}
	return buf, nil
}
