package netlab

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Proc is a process the lab started in the background inside a node. It is
// stopped and reaped at cleanup if the test has not stopped it.
type Proc struct {
	Name string    // short name, also the stem of its log file in Lab.Dir
	Cmd  *exec.Cmd // the running command (ip netns exec NS prog args...)
	Log  string    // path of the file that receives its stdout and stderr
	done chan struct{}
	err  error
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Wait waits for the process to exit and returns its exit error.
func (p *Proc) Wait() error {
	<-p.done
	return p.err
}

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Output returns what the process has written to its log so far.
func (p *Proc) Output() string {
	b, _ := os.ReadFile(p.Log)
	return string(b)
}

// Stop ends the process group with SIGTERM, then SIGKILL after grace, and
// waits for it.
func (p *Proc) Stop(grace time.Duration) {
	if p.Exited() {
		return
	}
	pgid := p.Cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
	// daemons' children may outlive the leader: end the group for good
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// nsCommand returns a command that runs prog inside the namespace ns in its
// own process group (so cleanup can end it with all its children).
func nsCommand(ns, prog string, args ...string) *exec.Cmd {
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, prog}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

// Command returns a command that runs name inside node, in its own process
// group, with the lab's directory as working directory. Run it with Run,
// Output or CombinedOutput; anything still running inside the lab's
// namespaces at cleanup is killed.
func (l *Lab) Command(node Node, name string, args ...string) *exec.Cmd {
	cmd := nsCommand(l.nsName(node), name, args...)
	cmd.Dir = l.dir
	return cmd
}

// Start starts name inside node in the background, its output going to a log
// file in Dir. The test fails if it cannot be started.
func (l *Lab) Start(node Node, name string, args ...string) *Proc {
	l.t.Helper()
	p, err := l.start(node, name, name, args...)
	if err != nil {
		l.t.Fatalf("netlab: %v", err)
	}
	return p
}

func (l *Lab) start(node Node, label, name string, args ...string) (*Proc, error) {
	l.mu.Lock()
	l.seq++
	logPath := filepath.Join(l.dir, fmt.Sprintf("%s-%d.log", filepath.Base(label), l.seq))
	l.mu.Unlock()
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", label, err)
	}
	cmd := l.Command(node, name, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s in %s: %w", label, node, err)
	}
	p := &Proc{Name: label, Cmd: cmd, Log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	l.mu.Lock()
	l.procs = append(l.procs, p)
	l.mu.Unlock()
	return p, nil
}

// run runs a command to completion and returns an error that carries its
// output when it fails.
func run(cmd *exec.Cmd) error {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w: %s", cmd.String(), err, bytes.TrimSpace(out.Bytes()))
	}
	return nil
}
