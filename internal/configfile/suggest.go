package configfile

import "strings"

// Nearest returns the option closest to word in edit distance (ignoring
// case), or "" when none is close enough to be a likely typo: at most a
// third of the word's length, and at least 1, edits away. Ties go to the
// earlier option.
func Nearest(word string, options []string) string {
	best, bestDist := "", -1
	limit := max(1, len([]rune(word))/3)
	lw := strings.ToLower(word)
	for _, o := range options {
		d := editDistance(lw, strings.ToLower(o))
		if d <= limit && (bestDist < 0 || d < bestDist) {
			best, bestDist = o, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in runes.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
