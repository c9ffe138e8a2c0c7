package source

// Trigger is a reason to sync now. Every trigger ends in the same sync; the
// reason is only for logs and status.
type Trigger struct {
	// Reason says what fired: "poll", "fsnotify refs/heads/main",
	// "webhook github push", "SIGHUP", "api".
	Reason string
}

// send offers t to out without blocking: a full channel already holds a
// reason to sync, and one sync serves them all.
func send(out chan<- Trigger, t Trigger) {
	select {
	case out <- t:
	default:
	}
}
