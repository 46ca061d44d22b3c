package strangler

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/strangler-fig/migrate/shadow"
)

// Duration ("5s", a bare number is seconds) and ByteSize ("1MiB", "64KB",
// a bare number is bytes) are the shadow block's, so one syntax holds
// across the whole config.
type (
	Duration = shadow.Duration
	ByteSize = shadow.ByteSize
)

// Percent is a fraction (0..1) written as "99.9%" in config. As in the
// shadow block, a bare number is read as a percentage: 50 is 50%.
type Percent float64

// ParsePercent reads "99.9%" (or "99.9") as 0.999.
func ParsePercent(s string) (Percent, error) {
	t := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "%"))
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f < 0 || f > 100 || f != f {
		return 0, fmt.Errorf("percentage %q: write it as 0%% to 100%%, e.g. 99.9%%", s)
	}
	// Rounded so "99.9%" is exactly the fraction 0.999 a gate compares with.
	return Percent(math.Round(f*1e10) / 1e12), nil
}

// UnmarshalJSON accepts "99.9%", "99.9" or 99.9.
func (p *Percent) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var f float64
		if err2 := json.Unmarshal(b, &f); err2 != nil {
			return fmt.Errorf("percentage %s: write it as text such as \"99.9%%\"", b)
		}
		s = strconv.FormatFloat(f, 'g', -1, 64)
	}
	v, err := ParsePercent(s)
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// MarshalJSON writes the percentage as text, e.g. "99.9%".
func (p Percent) MarshalJSON() ([]byte, error) {
	return json.Marshal(strconv.FormatFloat(float64(p)*100, 'f', -1, 64) + "%")
}
