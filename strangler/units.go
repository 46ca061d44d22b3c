package strangler

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration written as text ("5s", "250ms") in config.
type Duration time.Duration

// UnmarshalJSON accepts "5s" or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n float64
		if err2 := json.Unmarshal(b, &n); err2 != nil {
			return fmt.Errorf("duration %s: write it as text such as \"5s\"", b)
		}
		*d = Duration(n * float64(time.Second))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: write it as text such as \"5s\" or \"250ms\"", s)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes the duration as text.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// ByteSize is a size in bytes written as "1MiB", "512KiB", "64MB" or a number.
type ByteSize int64

var byteUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000},
	{"B", 1},
}

// ParseByteSize reads "1MiB"-style sizes.
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	for _, u := range byteUnits {
		if num, ok := strings.CutSuffix(t, u.suffix); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
			if err != nil || f < 0 {
				break
			}
			return ByteSize(f * float64(u.mult)), nil
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("size %q: write it as bytes or with a unit such as 1MiB or 512KiB", s)
	}
	return ByteSize(n), nil
}

// UnmarshalJSON accepts "1MiB" or a number of bytes.
func (b *ByteSize) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		var n int64
		if err2 := json.Unmarshal(data, &n); err2 != nil {
			return fmt.Errorf("size %s: write it as bytes or with a unit such as 1MiB", data)
		}
		s = strconv.FormatInt(n, 10)
	}
	v, err := ParseByteSize(s)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// MarshalJSON writes the size with the largest exact binary unit.
func (b ByteSize) MarshalJSON() ([]byte, error) {
	switch {
	case b != 0 && b%(1<<30) == 0:
		return json.Marshal(fmt.Sprintf("%dGiB", b>>30))
	case b != 0 && b%(1<<20) == 0:
		return json.Marshal(fmt.Sprintf("%dMiB", b>>20))
	case b != 0 && b%(1<<10) == 0:
		return json.Marshal(fmt.Sprintf("%dKiB", b>>10))
	}
	return json.Marshal(int64(b))
}

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
