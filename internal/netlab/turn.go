package netlab

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
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
	turnMinPort  = 49160 // relayed ports
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
	// TLS listens on TURNTLSPort too, with a certificate the lab makes at
	// start (TURNCertPool trusts it; its name is Server1's address).
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
		cert, key, err := l.makeCert(d)
		if err != nil {
			return fmt.Errorf("TURN certificate: %w", err)
		}
		args = append(args, "--cert="+cert, "--pkey="+key)
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

// makeCert writes a throw-away self-signed certificate for Server1 (an
// ECDSA P-256 key made now, valid for a day) and keeps it for TURNCertPool.
func (l *Lab) makeCert(dir string) (certPath, keyPath string, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "netlab TURN"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{Server1.AsSlice()},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", "", err
	}
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return "", "", err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return "", "", err
	}
	l.mu.Lock()
	l.turnCert = cert
	l.mu.Unlock()
	return certPath, keyPath, nil
}

// TURNCertPool returns a pool that trusts the TURN relay's throw-away
// certificate (Config.TURN.TLS).
func (l *Lab) TURNCertPool() *x509.CertPool {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := x509.NewCertPool()
	if l.turnCert != nil {
		p.AddCert(l.turnCert)
	}
	return p
}

// TURNLog returns what the TURN relay has logged so far.
func (l *Lab) TURNLog() string {
	b, _ := os.ReadFile(filepath.Join(l.dir, "turn", "turnserver.log"))
	return string(b)
}
