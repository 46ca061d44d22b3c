package main

import (
	"cmp"
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

// adminClient is the client of the control commands (status, shadow,
// canary, cutover, rollback, retire, gate, diffs): the admin address from
// adminAddr, the token from --token, else $MIGRATE_TOKEN, else
// $MIGRATE_ADMIN_TOKEN.
func adminClient(o *controlOptions, warn io.Writer) (*strangler.AdminClient, error) {
	addr, err := adminAddr(o, warn)
	if err != nil {
		return nil, err
	}
	token := cmp.Or(o.token, os.Getenv(tokenEnv), os.Getenv(strangler.AdminTokenEnv))
	return &strangler.AdminClient{BaseURL: strangler.AdminURLFor(addr), Token: token}, nil
}

// adminAddr finds the running proxy's admin API without depending on the
// config being valid (rollback is what people run during an incident, and
// the config may be what broke): --admin, then $MIGRATE_ADMIN, then the
// admin-address file the running proxy keeps next to its state store, then
// the config's admin address, then the default. A config that does not load
// is a warning on warn; only its store and admin keys are needed here.
func adminAddr(o *controlOptions, warn io.Writer) (string, error) {
	if o.admin != "" {
		return o.admin, nil
	}
	if env := os.Getenv(adminEnv); env != "" {
		return env, nil
	}
	path := o.configPath()
	if path == "" {
		return strangler.DefaultAdmin, nil
	}
	cfgAdmin, storePath, err := o.adminOfConfig(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", usageErrorf("--config %s: no such file", path)
	}
	if err != nil {
		fmt.Fprintf(warn, "warning: %v\n  (carrying on: reaching the running proxy does not need the config)\n", err)
	}
	if file := strangler.AdminFile(storePath); file != "" {
		doc, err := strangler.ReadAdminFile(file)
		switch {
		case err == nil:
			if !answers(doc.Admin) {
				return "", fmt.Errorf("%s says the proxy (pid %d, started %s) serves its admin API on %s, but nothing answers there: "+
					"that proxy is gone and left the file behind. Remove %s, or pass --admin ADDR",
					file, doc.PID, doc.Started.Format(time.RFC3339), doc.Admin, file)
			}
			return doc.Admin, nil
		case !errors.Is(err, fs.ErrNotExist):
			return "", err
		}
	}
	return cmp.Or(cfgAdmin, strangler.DefaultAdmin), nil
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
