package gossip

import (
	"context"
	"log"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// keyErrorEvery limits the clear key-mismatch error to one a minute.
const keyErrorEvery = time.Minute

// logBridge turns memberlist's "[LEVEL] memberlist: text" lines into slog
// records at the matching level (DEBUG stays debug: memberlist is chatty),
// and turns decryption failures into one clear error a minute naming the
// likely cause.
type logBridge struct {
	log   *slog.Logger
	clock Clock

	mu       sync.Mutex
	lastKey  time.Time
	keyCount atomic.Uint64
}

// logger returns a *log.Logger for memberlist's Config.Logger.
func (b *logBridge) logger() *log.Logger { return log.New(b, "", 0) }

// Write receives one memberlist log line.
func (b *logBridge) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	level := slog.LevelInfo
	for _, l := range []struct {
		tag string
		lv  slog.Level
	}{{"[DEBUG]", slog.LevelDebug}, {"[INFO]", slog.LevelInfo}, {"[WARN]", slog.LevelWarn},
		{"[ERR]", slog.LevelError}, {"[ERROR]", slog.LevelError}} {
		if strings.HasPrefix(line, l.tag) {
			level = l.lv
			line = strings.TrimSpace(strings.TrimPrefix(line, l.tag))
			break
		}
	}
	line = strings.TrimPrefix(line, "memberlist: ")
	if keyMismatch(line) {
		b.keyMismatch(line)
		level = slog.LevelDebug // said clearly above, at most once a minute
	}
	b.log.Log(context.Background(), level, line, "component", "memberlist")
	return len(p), nil
}

// keyMismatch reports whether a memberlist message says a peer's gossip
// is encrypted with a key we lack, or not encrypted when we require it.
func keyMismatch(s string) bool {
	s = strings.ToLower(s)
	return strings.Contains(s, "no installed keys could decrypt") ||
		strings.Contains(s, "encryption is not configured") ||
		strings.Contains(s, "remote state is not encrypted") ||
		strings.Contains(s, "decrypt packet failed") ||
		strings.Contains(s, "message authentication failed")
}

func (b *logBridge) keyMismatch(detail string) {
	b.keyCount.Add(1)
	now := b.clock.Now()
	b.mu.Lock()
	due := b.lastKey.IsZero() || now.Sub(b.lastKey) >= keyErrorEvery
	if due {
		b.lastKey = now
	}
	b.mu.Unlock()
	if due {
		b.log.Error("gossip refused: a peer's messages are not encrypted with a key in our keyring (--gossip-key differs between hosts, or one side runs --insecure-gossip); that peer is not admitted",
			"detail", detail)
	}
}
