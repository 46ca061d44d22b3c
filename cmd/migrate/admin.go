package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/strangler-fig/migrate/strangler"
)

// Environment variables the control commands read when the flag is not given.
const (
	adminEnv = "MIGRATE_ADMIN" // admin address, like --admin
	tokenEnv = "MIGRATE_TOKEN" // admin bearer token, like --token (MIGRATE_ADMIN_TOKEN also works)
)

// adminTarget is where a control command sends its requests, and why.
type adminTarget struct {
	addr  string
	from  string // "--admin", "$MIGRATE_ADMIN", the admin file, the config, or "default"
	token string
}

// resolveAdmin finds the running proxy's admin API without depending on the
// config being valid (rollback is what people run during an incident, and
// the config may be what broke): --admin, then $MIGRATE_ADMIN, then the
// admin-address file the running proxy keeps next to its state store, then
// the config's admin address, then the default. A config that does not load
// is a warning on warn; only its store and admin keys are needed here.
func resolveAdmin(o *controlOptions, warn io.Writer) (*adminTarget, error) {
	t := &adminTarget{token: o.token}
	if t.token == "" {
		t.token = os.Getenv(tokenEnv)
	}
	if t.token == "" {
		t.token = os.Getenv(strangler.AdminTokenEnv)
	}
	if o.admin != "" {
		t.addr, t.from = o.admin, "--admin"
		return t, nil
	}
	if env := os.Getenv(adminEnv); env != "" {
		t.addr, t.from = env, "$"+adminEnv
		return t, nil
	}
	t.addr, t.from = strangler.DefaultAdmin, "default"
	path := o.configPath()
	if path == "" {
		return t, nil
	}
	cfgAdmin, storePath, err := o.adminOfConfig(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, usageErrorf("--config %s: no such file", path)
	}
	if err != nil {
		fmt.Fprintf(warn, "warning: %v\n  (carrying on: reaching the running proxy does not need the config)\n", err)
	}
	if file := strangler.AdminFile(storePath); file != "" {
		doc, err := strangler.ReadAdminFile(file)
		switch {
		case err == nil:
			if !answers(doc.Admin) {
				return nil, fmt.Errorf("%s says the proxy (pid %d, started %s) serves its admin API on %s, but nothing answers there: "+
					"that proxy is gone and left the file behind. Remove %s, or pass --admin ADDR",
					file, doc.PID, doc.Started.Format(time.RFC3339), doc.Admin, file)
			}
			t.addr, t.from = doc.Admin, file
			return t, nil
		case !errors.Is(err, fs.ErrNotExist):
			return nil, err
		}
	}
	if cfgAdmin != "" {
		t.addr, t.from = cfgAdmin, path
	}
	return t, nil
}

// adminOfConfig reads the admin address and the state file path of a
// config. A config that fails validation still yields them when its YAML
// parses (the error is returned as well, for the warning); a config that
// does not even parse yields the default store next to it.
func (o *controlOptions) adminOfConfig(path string) (admin, store string, err error) {
	cfg, err := o.loadConfig(path)
	if err == nil {
		return cfg.Admin, cfg.StorePath(), nil
	}
	data, rerr := os.ReadFile(path)
	if rerr != nil {
		return "", "", rerr
	}
	abs, aerr := filepath.Abs(path)
	if aerr != nil {
		return "", "", aerr
	}
	var head struct {
		Admin string `json:"admin"`
		Store string `json:"store"`
	}
	// Lenient on purpose: unknown keys and wrong types elsewhere are what
	// made the config fail; these two keys are all that is needed here.
	_ = yaml.Unmarshal(data, &head)
	if head.Store == "" {
		head.Store = strangler.DefaultStore
	}
	if !strangler.IsPostgresURL(head.Store) && !filepath.IsAbs(head.Store) {
		head.Store = filepath.Join(filepath.Dir(abs), head.Store)
	}
	return head.Admin, head.Store, err
}

// answers reports whether something accepts connections at addr.
func answers(addr string) bool {
	hostport := addr
	if i := strings.Index(hostport, "://"); i >= 0 {
		hostport = strings.TrimSuffix(hostport[i+3:], "/")
	}
	conn, err := net.DialTimeout("tcp", hostport, 2*time.Second)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// newAdminClient is the client of the control commands (status, shadow,
// canary, cutover, rollback, retire, gate, diffs).
func newAdminClient(o *controlOptions, warn io.Writer) (*strangler.AdminClient, error) {
	t, err := resolveAdmin(o, warn)
	if err != nil {
		return nil, err
	}
	return &strangler.AdminClient{BaseURL: strangler.AdminURLFor(t.addr), Token: t.token}, nil
}
