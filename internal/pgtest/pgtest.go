// Package pgtest runs a real PostgreSQL server on loopback for migrate's
// tests: the Debian package's binaries, a throw-away cluster in a temporary
// directory, one database per test.
package pgtest

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
)

// Server is one PostgreSQL cluster started by a test.
type Server struct {
	bin  string // directory of initdb, postgres
	dir  string
	Port int
	cred *syscall.Credential // PostgreSQL refuses to run as root

	mu  sync.Mutex
	cmd *exec.Cmd
}

var (
	shared     *Server
	sharedErr  error
	sharedOnce sync.Once
	databases  atomic.Int64
)

// Shared returns the package's server, starting it on first use. Without
// PostgreSQL installed the test fails, saying what to install; with -short
// it is skipped instead.
func Shared(t testing.TB) *Server {
	t.Helper()
	sharedOnce.Do(func() { shared, sharedErr = start() })
	if sharedErr != nil {
		fail(t, sharedErr)
	}
	return shared
}

// Start starts a server of the test's own, stopped when the test ends: for
// tests that stop and restart the database.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := start()
	if err != nil {
		fail(t, err)
	}
	t.Cleanup(func() {
		s.Kill()
		os.RemoveAll(s.dir)
	})
	return s
}

func fail(t testing.TB, err error) {
	t.Helper()
	if testing.Short() {
		t.Skipf("PostgreSQL: %v", err)
	}
	t.Fatalf("PostgreSQL: %v", err)
}

// binDir finds the server binaries: PATH, then Debian's versioned directory.
func binDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real // a link on PATH; the other binaries are beside its target
		}
		return filepath.Dir(p), nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(matches) == 0 {
		return "", fmt.Errorf("initdb not found on PATH or in /usr/lib/postgresql/*/bin; install the server: apt-get install postgresql")
	}
	return filepath.Dir(matches[len(matches)-1]), nil
}

func start() (*Server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	removeStale()
	dir, err := os.MkdirTemp("", "migrate-pgtest-")
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin, dir: dir}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			u, err = user.Lookup("nobody")
		}
		if err != nil {
			return nil, fmt.Errorf("running as root and no postgres or nobody user to run the server as")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
	}
	initdb := s.command("initdb", "-D", s.data(), "-U", "migrate", "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions")
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %v: %s", err, out)
	}
	if err := s.startServer(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Server) data() string { return filepath.Join(s.dir, "data") }

func (s *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	// The server dies with the test binary, however that ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Pdeathsig: syscall.SIGKILL}
	return cmd
}

func (s *Server) startServer() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Port == 0 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		s.Port = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
	}
	cmd := s.command("postgres", "-D", s.data(), "-p", strconv.Itoa(s.Port), "-k", s.dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=200")
	log, err := os.OpenFile(filepath.Join(s.dir, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	s.cmd = cmd
	go cmd.Wait()
	db, err := sql.Open("pgx", s.URL("postgres"))
	if err != nil {
		return err
	}
	defer db.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := db.PingContext(ctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(log.Name())
			return fmt.Errorf("postgres did not accept connections within 30 s: %v; its log: %s", err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// URL is the address of database db on this server.
func (s *Server) URL(db string) string {
	return fmt.Sprintf("postgres://migrate@127.0.0.1:%d/%s?sslmode=disable", s.Port, db)
}

// NewDatabase creates an empty database for one test and returns its URL.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("t%d_%d", os.Getpid(), databases.Add(1))
	db, err := sql.Open("pgx", s.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	return s.URL(name)
}

// Kill stops the server the hard way, as a crash or a lost node would.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Kill()
		// The postmaster is gone; its backends notice and exit.
		for i := 0; i < 100 && processAlive(s.cmd.Process.Pid); i++ {
			time.Sleep(20 * time.Millisecond)
		}
		s.cmd = nil
	}
}

// Restart starts a killed server again on the same port and data.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	os.Remove(filepath.Join(s.data(), "postmaster.pid"))
	if err := s.startServer(); err != nil {
		t.Fatal(err)
	}
}

// removeStale deletes the clusters of earlier test runs whose server is
// gone: the shared server dies with its test binary and leaves its files.
func removeStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "migrate-pgtest-*"))
	for _, dir := range dirs {
		pidFile, err := os.ReadFile(filepath.Join(dir, "data", "postmaster.pid"))
		if err == nil {
			line, _, _ := strings.Cut(string(pidFile), "\n")
			if pid, err := strconv.Atoi(strings.TrimSpace(line)); err == nil && processAlive(pid) {
				continue
			}
		} else if st, err := os.Stat(dir); err != nil || time.Since(st.ModTime()) < time.Hour {
			continue // being set up, perhaps by a test binary running now
		}
		os.RemoveAll(dir)
	}
}

func processAlive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// A zombie has exited; only its parent's wait is missing.
	fields := strings.Fields(string(data))
	return len(fields) > 2 && fields[2] != "Z"
}
