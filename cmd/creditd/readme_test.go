package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creditd/creditd/internal/pgtest"
)

// readmePath is the README whose marked blocks TestReadmeWalkthrough runs,
// relative to this package's directory (where go test runs).
const readmePath = "../../README.md"

// readmeExamplePostgresURL is the database URL the README's postgres session
// shows; the test runs that session on a throwaway database instead.
const readmeExamplePostgresURL = "postgres://creditd:secret@db.internal:5432/creditd"

var (
	// A block is run when this comment is the line right above its fence.
	readmeMarkerRE = regexp.MustCompile(`^<!-- readme-test: (\S+) -->$`)
	// The README's addresses; each moves to a free port, so that the test
	// neither needs port 8080 nor meets what a developer runs there.
	readmeAddrRE = regexp.MustCompile(`\b127\.0\.0\.1:(80\d\d)\b`)
	// An answer comment: "# → [STATUS] BODY". Lines whose "#" is followed
	// by two or more spaces continue it.
	readmeAnswerRE       = regexp.MustCompile(`^# → (?:(\d{3}) )?(.+)$`)
	readmeContinuationRE = regexp.MustCompile(`^#\s{2,}\S`)
	// The README's q prints the body, then "HTTP STATUS" (curl's -w).
	readmeStatusRE = regexp.MustCompile(`^(.*)HTTP (\d{3})$`)
)

// readmePromises are answers the walkthrough must keep checking: without
// them the test would pass however wrong the flow went, as long as curl
// reached the server.
var readmePromises = []struct{ what, text string }{
	{"the wallet debit accepted", `200 {"event_id":"evt_…"`},
	{"a retried call replayed", `"duplicate":true`},
	{"the one-call purchase created", `201 {"id":"pur_…"`},
	{"a purchase the wallet cannot pay refused with 402", `402 {"type":"/problems/insufficient-credits"`},
}

// readmeStep is one shell command of a marked block, with the answer the
// README shows under it, if any.
type readmeStep struct {
	line   int    // the README line the command starts on
	cmd    string // possibly several lines
	answer *readmeAnswer
}

type readmeAnswer struct {
	line   int
	text   string // as written, continuation lines joined
	status string // "" when the comment names none
	body   *regexp.Regexp
}

// TestReadmeWalkthrough runs the README's marked shell blocks as a new user
// pasting them would: each session's blocks in order, in one bash, in an
// empty directory, with a freshly built creditd on PATH. Every command must
// exit 0, and every answer the README shows under a command must be what the
// command printed. The servers the blocks start in the background must stop
// with exit status 0 on SIGTERM; none outlives the test. The postgres
// session (several instances on one database) runs on a throwaway
// PostgreSQL database, and is skipped without the server binaries.
func TestReadmeWalkthrough(t *testing.T) {
	if testing.Short() {
		t.Skip("the README's walkthrough builds creditd and runs it: skipped in -short mode")
	}
	bash := lookPathOrSkip(t, "bash")
	lookPathOrSkip(t, "curl")

	readme, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := parseReadme(bash, string(readme))
	if err != nil {
		t.Fatalf("%s: %v", readmePath, err)
	}
	for _, name := range []string{"sqlite", "postgres"} {
		if !slices.ContainsFunc(sessions[name], func(s readmeStep) bool { return s.answer != nil }) {
			t.Fatalf("%s: no block marked readme-test: %s shows an answer to check", readmePath, name)
		}
	}
	for name := range sessions {
		if name != "sqlite" && name != "postgres" {
			t.Fatalf("%s: readme-test session %q: this test runs only sqlite and postgres", readmePath, name)
		}
	}
	for _, p := range readmePromises {
		if !slices.ContainsFunc(sessions["sqlite"], func(s readmeStep) bool {
			return s.answer != nil && strings.Contains(s.answer.text, p.text)
		}) {
			t.Errorf("%s: the walkthrough no longer shows %s (an answer containing %s)", readmePath, p.what, p.text)
		}
	}

	bin := buildCreditd(t)
	t.Run("sqlite", func(t *testing.T) {
		runReadmeSession(t, bash, bin, sessions["sqlite"], nil)
	})
	t.Run("postgres", func(t *testing.T) {
		db := pgtest.NewDatabase(t)
		// Quoted: the URL's query string holds '&'.
		runReadmeSession(t, bash, bin, sessions["postgres"], map[string]string{readmeExamplePostgresURL: "'" + db + "'"})
	})
}

// lookPathOrSkip finds a program the README's blocks need. Missing, it
// skips the test, except on CI, where it must run.
func lookPathOrSkip(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not on PATH: the README's walkthrough needs it", name)
		}
		t.Skipf("%s is not on PATH: skipping the README's walkthrough", name)
	}
	return p
}

// buildCreditd builds creditd into a directory of its own and returns the
// directory, for the scripts' PATH. GOPROXY=off: the build must not reach
// the network (the test's own dependencies are already here).
func buildCreditd(t *testing.T) string {
	t.Helper()
	gotool := lookPathOrSkip(t, "go")
	dir := t.TempDir()
	cmd := exec.Command(gotool, "build", "-o", filepath.Join(dir, "creditd"), "github.com/creditd/creditd/cmd/creditd")
	cmd.Env = append(os.Environ(), "GOPROXY=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build creditd: %v\n%s", err, out)
	}
	return dir
}

// parseReadme returns the steps of every marked block, by session, in the
// README's order. bash decides where a command ends (bash -n), so that a
// command may span lines inside quotes as well as after a backslash.
func parseReadme(bash, readme string) (map[string][]readmeStep, error) {
	lines := strings.Split(readme, "\n")
	sessions := map[string][]readmeStep{}
	for i := 0; i < len(lines); i++ {
		m := readmeMarkerRE.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		if i+1 >= len(lines) || lines[i+1] != "```sh" {
			return nil, fmt.Errorf("line %d: a readme-test marker must be right above a ```sh fence", i+1)
		}
		start := i + 2
		end := start
		for end < len(lines) && lines[end] != "```" {
			end++
		}
		if end == len(lines) {
			return nil, fmt.Errorf("line %d: the marked block never ends", i+2)
		}
		steps, err := splitCommands(bash, lines[start:end], start+1)
		if err != nil {
			return nil, err
		}
		sessions[m[1]] = append(sessions[m[1]], steps...)
		i = end
	}
	return sessions, nil
}

// splitCommands cuts a block's lines (the first is README line first) into
// commands, each with the answer comment right under it, if any. Other
// comments and blank lines are left out.
func splitCommands(bash string, lines []string, first int) ([]readmeStep, error) {
	var steps []readmeStep
	var pending []string
	var answer *readmeAnswer // the answer comment being read, for its continuation lines
	afterCommand := false    // the line before ended a command
	for i, l := range lines {
		n := first + i
		if len(pending) == 0 {
			if m := readmeAnswerRE.FindStringSubmatch(l); m != nil {
				if !afterCommand {
					return nil, fmt.Errorf("line %d: an answer comment must be right under its command", n)
				}
				answer = &readmeAnswer{line: n, status: m[1], text: l[len("# → "):]}
				steps[len(steps)-1].answer = answer
				afterCommand = false
				continue
			}
			afterCommand = false
			if answer != nil && readmeContinuationRE.MatchString(l) {
				answer.text += strings.TrimSpace(l[1:])
				continue
			}
			answer = nil
			if t := strings.TrimSpace(l); t == "" || strings.HasPrefix(t, "#") {
				continue
			}
		}
		pending = append(pending, l)
		if complete, err := completeCommand(bash, pending); err != nil {
			return nil, err
		} else if complete {
			steps = append(steps, readmeStep{line: n - len(pending) + 1, cmd: strings.Join(pending, "\n")})
			pending = nil
			afterCommand = true
		}
	}
	if len(pending) > 0 {
		return nil, fmt.Errorf("line %d: the block ends inside a command:\n%s", first+len(lines)-len(pending), strings.Join(pending, "\n"))
	}
	for i := range steps {
		if a := steps[i].answer; a != nil {
			body := strings.TrimSpace(strings.TrimPrefix(a.text, a.status+" "))
			parts := strings.Split(body, "…")
			for j := range parts {
				parts[j] = regexp.QuoteMeta(parts[j])
			}
			a.body = regexp.MustCompile("^" + strings.Join(parts, ".*") + "$")
		}
	}
	return steps, nil
}

// completeCommand reports whether lines make whole commands: no trailing
// backslash, and bash parses them (an open quote is a parse error).
func completeCommand(bash string, lines []string) (bool, error) {
	if strings.HasSuffix(lines[len(lines)-1], `\`) {
		return false, nil
	}
	cmd := exec.Command(bash, "-n")
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return false, nil
	}
	return err == nil, err
}

// readmeResult is what one step did: its exit status and what it printed.
type readmeResult struct {
	rc  int
	out string
}

// runReadmeSession runs steps as one bash script in an empty directory, with
// creditd from bin first on PATH, the README's addresses moved to free ports
// and replace's strings replaced, and checks every step's exit status and
// answer.
func runReadmeSession(t *testing.T, bash, bin string, steps []readmeStep, replace map[string]string) {
	work, scratch := t.TempDir(), t.TempDir()
	// After every step the script prints a line of its own to stdout and
	// stderr, the step's index and exit status, so that each step's output
	// can be told apart; it stops at the first failure.
	mark := fmt.Sprintf("@@readme-step-%d", time.Now().UnixNano())
	var script strings.Builder
	for i, s := range steps {
		fmt.Fprintf(&script, "%s\n__rc=$?; for __fd in 1 2; do printf '\\n%s %d %%d\\n' \"$__rc\" >&$__fd; done; [ \"$__rc\" = 0 ] || exit \"$__rc\"\n",
			s.cmd, mark, i)
	}
	// Then the servers the blocks started in the background get SIGTERM, as
	// "kill %1" sends, and must exit 0 (a graceful shutdown).
	script.WriteString(`__jobs=$(jobs -p)
[ -z "$__jobs" ] || kill -TERM $__jobs
for __p in $__jobs; do wait "$__p" || { echo "readme test: background job $__p exited $? on SIGTERM" >&2; exit 99; }; done
`)
	text := script.String()
	for from, to := range replace {
		if !strings.Contains(text, from) {
			t.Fatalf("%s no longer shows %s, which this test replaces", readmePath, from)
		}
		text = strings.ReplaceAll(text, from, to)
	}
	ports := map[string]string{"8080": freePort(t)} // 8080: creditd's default address, which the walkthrough relies on
	text = readmeAddrRE.ReplaceAllStringFunc(text, func(addr string) string {
		port := readmeAddrRE.FindStringSubmatch(addr)[1]
		if ports[port] == "" {
			ports[port] = freePort(t)
		}
		return "127.0.0.1:" + ports[port]
	})
	scriptPath := filepath.Join(scratch, "readme.sh")
	if err := os.WriteFile(scriptPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, err := os.Create(filepath.Join(scratch, "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	defer stdout.Close()
	stderr, err := os.Create(filepath.Join(scratch, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()

	// The blocks take seconds; a minute means a step hangs (a wait for a
	// server that never comes up).
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bash, scriptPath)
	cmd.Dir = work
	cmd.Env = readmeEnv(bin, scratch, "127.0.0.1:"+ports["8080"])
	// Files, not pipes: a server left running holds its copy of the
	// script's output, and Wait would wait for it.
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// The script and the servers it starts share a process group of their
	// own, so that all of them can be stopped together.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopProcessGroup(t, cmd.Process.Pid) })
	runErr := cmd.Wait()

	out, _ := os.ReadFile(stdout.Name())
	logs, _ := os.ReadFile(stderr.Name())
	results, outRest := readmeResults(string(out), mark)
	errs, errRest := readmeResults(string(logs), mark)
	for i, s := range steps {
		if i == len(results) { // the step running when the script ended, or was killed at the deadline
			t.Errorf("%s line %d: did not finish (%v)\n%s\nprinted:\n%s\nstderr:\n%s", readmePath, s.line, runErr, s.cmd, outRest, errRest)
			break
		}
		r, stepErr := results[i], ""
		if i < len(errs) {
			stepErr = errs[i].out
		}
		if r.rc != 0 { // the script stopped there
			t.Errorf("%s line %d: exit status %d\n%s\nprinted:\n%s\nstderr:\n%s", readmePath, s.line, r.rc, s.cmd, r.out, stepErr)
			break
		}
		if s.answer != nil {
			if msg := s.answer.check(r.out); msg != "" {
				t.Errorf("%s line %d: %s\n%s\nprinted:\n%s\nthe README shows (line %d): %s", readmePath, s.line, msg, s.cmd, r.out, s.answer.line, s.answer.text)
			}
		}
	}
	if runErr != nil && len(results) == len(steps) {
		t.Errorf("the script ended with %v after its last step (stopping the servers it started)\nstderr:\n%s", runErr, logs)
	}
}

// check compares what a step printed with the answer the README shows: the
// status q printed last, and the body on the line before.
func (a *readmeAnswer) check(out string) string {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	status, body := "", ""
	if m := readmeStatusRE.FindStringSubmatch(lines[len(lines)-1]); m != nil {
		status, body = m[2], m[1]
		lines = lines[:len(lines)-1]
	}
	for i := len(lines) - 1; body == "" && i >= 0; i-- {
		body = strings.TrimSpace(lines[i])
	}
	switch {
	case a.status != "" && status != a.status:
		return fmt.Sprintf("answered status %q, the README shows %s", status, a.status)
	case !a.body.MatchString(body):
		return "answered another body than the README shows"
	}
	return ""
}

// readmeResults cuts the script's output at its step marks, and returns
// the output after the last mark apart.
func readmeResults(out, mark string) (results []readmeResult, rest string) {
	var cur []string
	for _, line := range strings.Split(out, "\n") {
		if tail, ok := strings.CutPrefix(line, mark+" "); ok {
			var i, rc int
			if _, err := fmt.Sscanf(tail, "%d %d", &i, &rc); err != nil || i != len(results) {
				break // cannot happen: the script prints them in order
			}
			results = append(results, readmeResult{rc: rc, out: strings.Join(cur, "\n")})
			cur = nil
			continue
		}
		cur = append(cur, line)
	}
	return results, strings.Join(cur, "\n")
}

// readmeEnv is the test's environment for the script, but with bin first
// on PATH, creditd's default address on a free port, and nothing of the
// developer's that would change what the blocks do: no CREDITD_* settings, no
// curl configuration (HOME is a scratch directory) and no proxy for the
// local server.
func readmeEnv(bin, home, addr string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "CREDITD_") || strings.HasSuffix(strings.ToLower(k), "_proxy") ||
			k == "PATH" || k == "HOME" || k == "CURL_HOME" || k == "XDG_CONFIG_HOME" {
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		"PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"HOME="+home,
		"CREDITD_ADDR="+addr,
		"NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost",
	)
}

// freePort returns a TCP port free on the loopback interface right now.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
}

// stopProcessGroup stops what is left of the script's process group: the
// servers of a script that stopped before its end. SIGTERM first, as a
// user would; SIGKILL if they are still there after their shutdown grace.
func stopProcessGroup(t *testing.T, pgid int) {
	if syscall.Kill(-pgid, syscall.SIGTERM) != nil {
		return // nothing left
	}
	deadline := time.Now().Add(12 * time.Second)
	for time.Now().Before(deadline) {
		if errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("process group %d still there 12s after SIGTERM: SIGKILL", pgid)
	syscall.Kill(-pgid, syscall.SIGKILL)
}
