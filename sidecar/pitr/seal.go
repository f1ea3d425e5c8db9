package pitr

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"

	"github.com/ai-ninja/pgninja/sidecar/sealed"
	"github.com/ai-ninja/pgninja/sidecar/storage"
)

// sealTo stores r as a sealed, compressed object and returns its size and
// SHA-256. The object appears only if everything succeeded.
func sealTo(ctx context.Context, store storage.Storage, key *sealed.Key, name string, r io.Reader) (int64, string, error) {
	up, err := store.Create(ctx, name)
	if err != nil {
		return 0, "", err
	}
	defer up.Abort()
	h := sha256.New()
	cw := &counter{}
	sw, err := sealed.NewWriter(io.MultiWriter(up, h, cw), key, 0)
	if err != nil {
		return 0, "", err
	}
	zw, err := zstd.NewWriter(sw, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		return 0, "", err
	}
	if _, err := io.CopyBuffer(zw, r, make([]byte, 1<<20)); err != nil {
		zw.Close()
		return 0, "", err
	}
	if err := zw.Close(); err != nil {
		return 0, "", err
	}
	if err := sw.Close(); err != nil {
		return 0, "", err
	}
	if err := up.Commit(); err != nil {
		return 0, "", err
	}
	return cw.n, hex.EncodeToString(h.Sum(nil)), nil
}

// openSealed opens a sealed object as its plaintext.
func openSealed(ctx context.Context, store storage.Storage, key *sealed.Key, name string) (io.Reader, func(), error) {
	f, err := store.Open(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	sr, err := sealed.NewReader(f, key)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	zr, err := zstd.NewReader(sr)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return &named{r: zr, name: name}, func() { zr.Close(); f.Close() }, nil
}

type named struct {
	r    io.Reader
	name string
}

func (n *named) Read(p []byte) (int, error) {
	k, err := n.r.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("%s: %w", n.name, err)
	}
	return k, err
}

type counter struct{ n int64 }

func (c *counter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

func putJSON(ctx context.Context, store storage.Storage, name string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	up, err := store.Create(ctx, name)
	if err != nil {
		return err
	}
	defer up.Abort()
	if _, err := up.Write(append(b, '\n')); err != nil {
		return err
	}
	return up.Commit()
}
