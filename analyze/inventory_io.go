package analyze

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/strangler-fig/migrate/internal/configfile"
)

// InventoryKind is the kind stamped on every inventory document.
const InventoryKind = "Inventory"

// MaxInventoryBytes caps what ReadInventory accepts; a fleet of hundreds of
// services with full dependency lists is a few MiB.
const MaxInventoryBytes = 64 << 20

// ReadInventory reads a migrate/v1 inventory file. A document of another
// apiVersion or kind is refused with an error that says what was found.
func ReadInventory(path string) (*Inventory, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read inventory %s: %w", path, err)
	}
	defer f.Close()
	inv, err := DecodeInventory(f)
	var ce *configfile.Error
	if errors.As(err, &ce) {
		return nil, fmt.Errorf("read inventory %s", ce.In(path))
	}
	if err != nil {
		return nil, fmt.Errorf("read inventory %s: %w", path, err)
	}
	return inv, nil
}

// DecodeInventory reads a migrate/v1 inventory document (JSON) from r.
func DecodeInventory(r io.Reader) (*Inventory, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxInventoryBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxInventoryBytes {
		return nil, fmt.Errorf("larger than %d bytes; is this an inventory?", MaxInventoryBytes)
	}
	var head struct {
		APIVersion *string `json:"apiVersion"`
		Kind       string  `json:"kind"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("not a JSON inventory: %s; write one with 'migrate analyze ... --inventory-out FILE'", jsonErrorText(data, err))
	}
	switch {
	case head.APIVersion == nil:
		return nil, fmt.Errorf("no apiVersion; expected %q (write one with 'migrate analyze ... --inventory-out FILE')", APIVersion)
	case *head.APIVersion != APIVersion:
		return nil, fmt.Errorf("apiVersion is %q, this migrate reads %q; re-run 'migrate analyze' to produce a current inventory", *head.APIVersion, APIVersion)
	case head.Kind != "" && head.Kind != InventoryKind:
		return nil, fmt.Errorf("kind is %q, expected %q", head.Kind, InventoryKind)
	}
	var inv Inventory
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&inv); err != nil {
		// The node walk names the key path and position of a wrong value.
		if doc, perr := configfile.Parse(data); perr == nil {
			if cerr := doc.CheckTypes(reflect.TypeFor[Inventory]()); cerr != nil {
				return nil, cerr
			}
		}
		return nil, fmt.Errorf("invalid inventory: %s", jsonErrorText(data, err))
	}
	for i, s := range inv.Services {
		if s.Name == "" {
			return nil, fmt.Errorf("invalid inventory: services[%d] has no name", i)
		}
	}
	return &inv, nil
}

// jsonErrorText adds the line and column to a JSON syntax error.
func jsonErrorText(data []byte, err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line, col := lineCol(data, se.Offset)
		return fmt.Sprintf("line %d, column %d: %v", line, col, err)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		line, col := lineCol(data, te.Offset)
		return fmt.Sprintf("line %d, column %d: %s should be %s, not %s", line, col, te.Field, te.Type, te.Value)
	}
	return err.Error()
}

func lineCol(data []byte, offset int64) (int, int) {
	offset = min(max(offset, 0), int64(len(data)))
	before := data[:offset]
	line := bytes.Count(before, []byte("\n")) + 1
	col := int(offset) - bytes.LastIndexByte(before, '\n')
	return line, col
}

// WriteInventory writes inv as indented JSON, stamping apiVersion and kind.
// It writes a temporary file next to path and renames it, so a reader never
// sees half an inventory.
func WriteInventory(path string, inv *Inventory) error {
	var buf bytes.Buffer
	if err := EncodeInventory(&buf, inv); err != nil {
		return fmt.Errorf("write inventory %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write inventory %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		tmp.Close()
		return fmt.Errorf("write inventory %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write inventory %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("write inventory %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write inventory %s: %w", path, err)
	}
	return nil
}

// EncodeInventory writes inv as indented JSON to w, stamping apiVersion and
// kind (inv itself is updated so callers print what was written).
func EncodeInventory(w io.Writer, inv *Inventory) error {
	if inv == nil {
		return errors.New("no inventory to write")
	}
	inv.APIVersion, inv.Kind = APIVersion, InventoryKind
	if inv.Services == nil {
		inv.Services = []Service{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(inv)
}

// NewInventory merges the records, assesses every service, orders them for
// migration and stamps the document. now is the generation time (UTC).
func NewInventory(now time.Time, services []Service, inputErrors []InputError) *Inventory {
	merged := MergeServices(services)
	for i := range merged {
		Assess(&merged[i])
	}
	inv := &Inventory{
		APIVersion: APIVersion,
		Kind:       InventoryKind,
		Generated:  now.UTC(),
		Services:   merged,
		Order:      MigrationOrder(merged),
		Errors:     inputErrors,
	}
	return inv
}

// MergeServices combines records of the same service, found by different
// inputs (cluster manifests, images, OpenAPI documents, live probes), into
// one Service per name, sorted by name. Sources accumulate; for each part
// the first record that has it wins, except that an API from a document
// with operations beats one without, and a deployment's missing fields are
// filled from later records. Findings and readiness are left for Assess.
func MergeServices(records []Service) []Service {
	index := map[string]int{}
	var out []Service
	for _, r := range records {
		i, seen := index[r.Name]
		if !seen {
			index[r.Name] = len(out)
			c := r
			c.Sources = slices.Clone(r.Sources)
			c.Findings, c.Readiness = nil, Readiness{}
			out = append(out, c)
			continue
		}
		mergeInto(&out[i], r)
	}
	for i := range out {
		out[i].Sources = dedupe(out[i].Sources)
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out
}

func mergeInto(dst *Service, src Service) {
	dst.Sources = append(dst.Sources, src.Sources...)
	if dst.Namespace == "" {
		dst.Namespace = src.Namespace
	}
	if dst.API == nil || (len(dst.API.Operations) == 0 && src.API != nil && len(src.API.Operations) > 0) {
		if src.API != nil {
			dst.API = src.API
		}
	}
	if dst.Image == nil {
		dst.Image = src.Image
	}
	if dst.Runtime == nil {
		dst.Runtime = src.Runtime
	}
	switch {
	case dst.Deployment == nil:
		dst.Deployment = src.Deployment
	case src.Deployment != nil:
		d, s := *dst.Deployment, src.Deployment
		if d.Image == "" {
			d.Image = s.Image
		}
		if d.Upstream == "" {
			d.Upstream = s.Upstream
		}
		d.Env = dedupe(append(slices.Clone(d.Env), s.Env...))
		d.DependsOn = dedupe(append(slices.Clone(d.DependsOn), s.DependsOn...))
		d.Routes = dedupe(append(slices.Clone(d.Routes), s.Routes...))
		if len(d.Ports) == 0 {
			d.Ports = s.Ports
		}
		if len(d.Probes) == 0 {
			d.Probes = s.Probes
		}
		dst.Deployment = &d
	}
}

// dedupe drops repeats, keeping first occurrences in order.
func dedupe(list []string) []string {
	if len(list) == 0 {
		return list
	}
	seen := map[string]bool{}
	out := list[:0:0]
	for _, v := range list {
		if v = strings.TrimSpace(v); v != "" && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}
