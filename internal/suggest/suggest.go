// Package suggest finds the word a user probably meant ("did you mean …?")
// for misspelt flags, commands and manifest fields.
package suggest

import "strings"

// Closest returns the candidate closest to typed when it is close enough to
// be a typo (edit distance at most 2, ignoring case, and less than half the
// candidate's length), else "". Ties go to the earlier candidate.
func Closest(typed string, candidates []string) string {
	best, bestDist := "", 3
	lower := strings.ToLower(typed)
	for _, cand := range candidates {
		d := Distance(lower, strings.ToLower(cand))
		if d < bestDist && 2*d < len(cand) {
			best, bestDist = cand, d
		}
	}
	return best
}

// Distance is the Levenshtein distance between a and b, in bytes. Strings
// longer than 64 bytes are never typos of each other: the distance is then
// reported as 99 without computing it.
func Distance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 99
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
