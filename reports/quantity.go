package reports

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ParseQuantity parses a Kubernetes resource quantity ("512Mi", "1Gi",
// "250m", "0.5", "1e3", "2k") into a plain number: bytes for memory, cores
// for CPU. It follows the Kubernetes grammar: a signed decimal number then
// an optional binary suffix (Ki Mi Gi Ti Pi Ei), decimal suffix (n u m k M
// G T P E) or decimal exponent (e3, E-2).
func ParseQuantity(s string) (float64, error) {
	q := strings.TrimSpace(s)
	if q == "" {
		return 0, fmt.Errorf("parse quantity %q: empty; use a Kubernetes quantity such as 512Mi or 250m", s)
	}
	// Split at the first character that cannot belong to the number.
	end := 0
	for end < len(q) {
		c := q[end]
		if (c >= '0' && c <= '9') || c == '.' || ((c == '+' || c == '-') && end == 0) {
			end++
			continue
		}
		break
	}
	num, suffix := q[:end], q[end:]
	if num == "" || num == "+" || num == "-" || num == "." || strings.Count(num, ".") > 1 {
		return 0, fmt.Errorf("parse quantity %q: no number; use a Kubernetes quantity such as 512Mi or 250m", s)
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil {
		// strconv's message names a Go function; say it in our words.
		return 0, fmt.Errorf("parse quantity %q: %q is not a number; use a Kubernetes quantity such as 512Mi or 250m", s, num)
	}
	mult, err := quantitySuffix(suffix)
	if err != nil {
		return 0, fmt.Errorf("parse quantity %q: %w", s, err)
	}
	r := v * mult
	if math.IsInf(r, 0) || math.IsNaN(r) {
		return 0, fmt.Errorf("parse quantity %q: out of range", s)
	}
	return r, nil
}

func quantitySuffix(s string) (float64, error) {
	switch s {
	case "":
		return 1, nil
	case "Ki":
		return 1 << 10, nil
	case "Mi":
		return 1 << 20, nil
	case "Gi":
		return 1 << 30, nil
	case "Ti":
		return 1 << 40, nil
	case "Pi":
		return 1 << 50, nil
	case "Ei":
		return 1 << 60, nil
	case "n":
		return 1e-9, nil
	case "u":
		return 1e-6, nil
	case "m":
		return 1e-3, nil
	case "k":
		return 1e3, nil
	case "M":
		return 1e6, nil
	case "G":
		return 1e9, nil
	case "T":
		return 1e12, nil
	case "P":
		return 1e15, nil
	case "E":
		return 1e18, nil
	}
	if len(s) > 1 && (s[0] == 'e' || s[0] == 'E') {
		exp, err := strconv.Atoi(s[1:])
		if err != nil || exp > 308 || exp < -308 {
			return 0, fmt.Errorf("bad exponent %q", s)
		}
		return math.Pow10(exp), nil
	}
	return 0, fmt.Errorf("unknown suffix %q (want Ki, Mi, Gi, Ti, Pi, Ei, n, u, m, k, M, G, T, P, E or an exponent)", s)
}
