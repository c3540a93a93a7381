package metrics

// FramesSent counts n frames of command c queued for clients at once. Hot paths count locally and call
// this once per batch instead of FrameSent per frame. Non-positive n is ignored.
func (m *Metrics) FramesSent(c Command, n int) {
	if m == nil || c >= numCommands || n <= 0 {
		return
	}
	m.framesSent[c].Add(float64(n))
}
