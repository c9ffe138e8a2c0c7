package main

import (
	"fmt"
	"slices"
	"time"
)

// summary is the min, median and max of some runs, and a high percentile.
type summary struct {
	n                  int
	min, med, max, p99 float64
}

// summarize sums up xs (not changed).
func summarize(xs []float64) summary {
	if len(xs) == 0 {
		return summary{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	p99 := s[min(len(s)-1, (len(s)*99+99)/100-1)]
	return summary{n: len(s), min: s[0], med: med, max: s[len(s)-1], p99: p99}
}

// mmm formats min/median/max with the format f.
func (s summary) mmm(f string) string {
	return fmt.Sprintf(f+" / "+f+" / "+f, s.min, s.med, s.max)
}

// ms is d in milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// us is d in microseconds.
func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
