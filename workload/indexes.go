package workload

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Indexes is a set of completion indexes, written as Kubernetes writes a
// Job's completedIndexes: sorted ranges, "0-2,5,7-9" ("" when empty).
// The zero value is the empty set.
type Indexes struct {
	// sorted holds the members, ascending, each once.
	sorted []int
}

// Has reports whether i is in the set.
func (s Indexes) Has(i int) bool {
	_, ok := slices.BinarySearch(s.sorted, i)
	return ok
}

// Add puts i in the set.
func (s *Indexes) Add(i int) {
	if at, ok := slices.BinarySearch(s.sorted, i); !ok {
		s.sorted = slices.Insert(s.sorted, at, i)
	}
}

// Len returns the number of members.
func (s Indexes) Len() int { return len(s.sorted) }

// List returns the members in ascending order.
func (s Indexes) List() []int { return slices.Clone(s.sorted) }

// String writes the set as ranges: "0-2,5".
func (s Indexes) String() string {
	var b strings.Builder
	for i := 0; i < len(s.sorted); {
		j := i
		for j+1 < len(s.sorted) && s.sorted[j+1] == s.sorted[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(s.sorted[i]))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(s.sorted[j]))
		}
		i = j + 1
	}
	return b.String()
}

// maxIndexRange bounds one range of ParseIndexes, so a corrupt record cannot
// allocate without limit; it is far above any completions kelpie accepts.
const maxIndexRange = 1 << 20

// ParseIndexes reads a set written by Indexes.String.
func ParseIndexes(text string) (Indexes, error) {
	var s Indexes
	if text == "" {
		return s, nil
	}
	for part := range strings.SplitSeq(text, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		first, err := strconv.Atoi(lo)
		if err != nil || first < 0 {
			return Indexes{}, fmt.Errorf("parse indexes %q: bad index %q", text, lo)
		}
		last := first
		if isRange {
			if last, err = strconv.Atoi(hi); err != nil || last < first || last-first > maxIndexRange {
				return Indexes{}, fmt.Errorf("parse indexes %q: bad range %q", text, part)
			}
		}
		for i := first; i <= last; i++ {
			s.Add(i)
		}
	}
	return s, nil
}

// MarshalJSON writes the set as its string.
func (s Indexes) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// UnmarshalJSON reads the set from its string.
func (s *Indexes) UnmarshalJSON(data []byte) error {
	var text string
	if err := json.Unmarshal(data, &text); err != nil {
		return fmt.Errorf("indexes: %w", err)
	}
	parsed, err := ParseIndexes(text)
	if err != nil {
		return err
	}
	*s = parsed
	return nil
}
