package netlab

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// TURN relay of the lab: a second coturn on Server1 that relays (RFC 8656,
// RFC 5766) with long-term credentials, beside the --stun-only one.
const (
	TURNPort     = 3490 // UDP and TCP (coturn also takes 3491 as its alternate port)
	TURNTLSPort  = 3492 // TLS over TCP (and 3493)
	TURNUser     = "alice"
	TURNPassword = "secret"
	TURNRealm    = "lab.example"
	TURNTLSName  = "turn.lab.example" // the DNS name in the TURN relay's certificate
	turnMinPort  = 49160              // relayed ports
	turnMaxPort  = 49400
)

// TURN configures the lab's relaying coturn. The zero value relays with
// coturn's default lifetimes (allocation up to 3600 s, permissions 300 s,
// channels 600 s) over UDP and TCP.
type TURN struct {
	// MaxAllocateLifetime, PermissionLifetime and ChannelLifetime shorten
	// coturn's lifetimes (whole seconds) so a short test outlives them.
	MaxAllocateLifetime time.Duration
	PermissionLifetime  time.Duration
	ChannelLifetime     time.Duration
	// TLS listens on TURNTLSPort too, with a certificate for TURNTLSName
	// and Server1's address that the lab's throw-away CA (the one of
	// kamailio's certificate) signs at start: Lab.DialTLS(node,
	// Server1.String()) reaches it, and Certs().Roots trusts it.
	TLS bool
	// UserQuota limits the concurrent allocations of a user (486 beyond).
	UserQuota int
	// NoUDPRelay refuses UDP relaying (442 to REQUESTED-TRANSPORT UDP).
	NoUDPRelay bool
	// StaleNonce makes nonces expire after this long (438 Stale Nonce).
	StaleNonce time.Duration
	// Mobility turns on RFC 8016 mobility tickets (coturn --mobility).
	Mobility bool
}

func (c TURN) validate() error {
	for _, d := range []time.Duration{c.MaxAllocateLifetime, c.PermissionLifetime, c.ChannelLifetime, c.StaleNonce} {
		if d < 0 || d%time.Second != 0 {
			return fmt.Errorf("TURN lifetime %v must be whole seconds", d)
		}
	}
	return nil
}

func (l *Lab) startTURN() error {
	c := l.cfg.TURN
	d := filepath.Join(l.dir, "turn")
	if err := os.MkdirAll(d, 0o755); err != nil {
		return err
	}
	args := []string{"-n", "-v", "--lt-cred-mech", "--user=" + TURNUser + ":" + TURNPassword, "--realm=" + TURNRealm,
		"--listening-ip=" + Server1.String(), "--relay-ip=" + Server1.String(),
		"--listening-port=" + strconv.Itoa(TURNPort), "--tls-listening-port=" + strconv.Itoa(TURNTLSPort),
		"--min-port=" + strconv.Itoa(turnMinPort), "--max-port=" + strconv.Itoa(turnMaxPort),
		"--fingerprint", "--no-dtls", "--no-cli", "--no-stdout-log", "--no-rfc5780",
		"--no-multicast-peers",
		"--log-file=" + filepath.Join(d, "turnserver.log"), "--simple-log",
		"--pidfile=" + filepath.Join(d, "turnserver.pid"), "--userdb=" + filepath.Join(d, "turndb"),
		"--server-name=lab-turn"}
	seconds := func(flag string, v time.Duration) {
		if v > 0 {
			args = append(args, flag+"="+strconv.Itoa(int(v/time.Second)))
		}
	}
	seconds("--max-allocate-lifetime", c.MaxAllocateLifetime)
	seconds("--permission-lifetime", c.PermissionLifetime)
	seconds("--channel-lifetime", c.ChannelLifetime)
	seconds("--stale-nonce", c.StaleNonce)
	if c.UserQuota > 0 {
		args = append(args, "--user-quota="+strconv.Itoa(c.UserQuota))
	}
	if c.Mobility {
		args = append(args, "--mobility")
	}
	if c.NoUDPRelay {
		args = append(args, "--no-udp-relay")
	}
	if c.TLS {
		c, err := l.issue(d, "turn-", TURNTLSName, Server1)
		if err != nil {
			return fmt.Errorf("TURN certificate: %w", err)
		}
		args = append(args, "--cert="+c.CertFile, "--pkey="+c.KeyFile)
	} else {
		args = append(args, "--no-tls")
	}
	if _, err := l.service(WAN, "turn", "turnserver", args...); err != nil {
		return err
	}
	if err := l.waitListen(WAN, "udp", 5*time.Second, TURNPort); err != nil {
		return err
	}
	ports := []int{TURNPort}
	if c.TLS {
		ports = append(ports, TURNTLSPort)
	}
	return l.waitListen(WAN, "tcp", 5*time.Second, ports...)
}

// TURNLog returns what the TURN relay has logged so far.
func (l *Lab) TURNLog() string {
	b, _ := os.ReadFile(filepath.Join(l.dir, "turn", "turnserver.log"))
	return string(b)
}
