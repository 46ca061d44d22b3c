package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// progressBar draws "label [#####.....] 3/8" on one stderr line while long
// work runs. It draws only on a terminal, so piped output and logs stay
// clean, and redraws at most every progressInterval so a fast loop does not
// flood the terminal.
type progressBar struct {
	mu      sync.Mutex
	w       io.Writer
	label   string
	enabled bool
	last    time.Time
	drawn   bool
}

// progressInterval is the minimum time between two redraws.
const progressInterval = 100 * time.Millisecond

// progressWidth is the number of cells in the bar.
const progressWidth = 30

// newProgressBar returns a bar that draws on s.err when s is a terminal.
func newProgressBar(s *streams, label string) *progressBar {
	return &progressBar{w: s.err, label: label, enabled: s.terminal}
}

// Update records that done of total items are finished. It is safe to call
// from several goroutines.
func (p *progressBar) Update(done, total int) {
	if p == nil || !p.enabled || total <= 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if done < total && p.drawn && now.Sub(p.last) < progressInterval {
		return
	}
	p.last, p.drawn = now, true
	filled := progressWidth * min(max(done, 0), total) / total
	fmt.Fprintf(p.w, "\r\x1b[K%s [%s%s] %d/%d", p.label,
		strings.Repeat("#", filled), strings.Repeat(".", progressWidth-filled), done, total)
}

// Finish clears the bar's line so what follows starts on a clean line.
func (p *progressBar) Finish() {
	if p == nil || !p.enabled {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.drawn = false
	}
}
