package strangler

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/strangler-fig/migrate/internal/configfile"
)

// checkOutboundNames refuses an in-process candidate's outbound entry that
// reads like a service name (one DNS label: no scheme, dot or port) but
// names no service of this config. Such an entry would otherwise be taken
// for a bare host and the guest's calls would leave through DNS, so a typo
// ("inventory-servce") or a service left out of the config would send the
// port's calls, and in shadow its reads, somewhere nobody meant.
func (c *Config) checkOutboundNames() error {
	names := c.ServiceNames()
	for _, name := range names {
		s := c.Services[name]
		if s == nil || s.Candidate == nil || s.Candidate.Wasm == "" || len(s.Candidate.Raw) == 0 {
			continue
		}
		var block struct {
			Outbound []string `json:"outbound"`
		}
		// A mistyped outbound value is the Wasm host's to report, with
		// its own line and column (CheckWasmCandidates).
		if json.Unmarshal(s.Candidate.Raw, &block) != nil {
			continue
		}
		for i, a := range block.Outbound {
			if !looksLikeServiceName(a) || c.Services[a] != nil {
				continue
			}
			msg := fmt.Sprintf("services.%s.candidate.outbound[%d]: %q is not a service of this config", name, i, a)
			hint := fmt.Sprintf("write a host outside the config as an origin: %q", "http://"+a)
			if near := configfile.Nearest(a, names); near != "" {
				return fmt.Errorf("%s; did you mean %q? (%s)", msg, near, hint)
			}
			return fmt.Errorf("%s (services: %s); %s", msg, strings.Join(names, ", "), hint)
		}
	}
	return nil
}

// looksLikeServiceName reports whether an outbound entry has the shape of
// a service name rather than a host: a single label with no scheme, dot,
// port or path. "localhost" is the one single-label host kept as a host.
func looksLikeServiceName(a string) bool {
	a = strings.TrimSpace(a)
	return a != "" && a != "localhost" && !strings.ContainsAny(a, ":./[]@")
}
