package netlab

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"
)

// Certs is a throw-away certificate authority and one server certificate
// it signed, made by a test (never committed): PEM files in a directory
// and the same as Go values.
type Certs struct {
	CAFile   string // the CA certificate (PEM): the roots a UA trusts
	CertFile string // the server certificate (PEM)
	KeyFile  string // the server key (PEM, PKCS#8)
	Roots    *x509.CertPool
	Server   tls.Certificate
}

// MakeCerts writes a new CA and a server certificate for name (a DNS
// name) and ips, valid for a day, into dir, with the given prefix on the
// file names.
func MakeCerts(dir, prefix, name string, ips ...netip.Addr) (Certs, error) {
	ca, err := newAuthority("sipnat lab CA " + prefix)
	if err != nil {
		return Certs{}, err
	}
	return ca.issue(dir, prefix, name, ips...)
}

// authority is a throw-away CA that signs a lab's server certificates.
type authority struct {
	cert *x509.Certificate
	der  []byte
	key  *ecdsa.PrivateKey
}

func newAuthority(name string) (*authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &authority{cert: cert, der: der, key: key}, nil
}

// issue writes the CA and a server certificate it signs for name and ips.
func (a *authority) issue(dir, prefix, name string, ips ...netip.Addr) (Certs, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Certs{}, err
	}
	now := time.Now()
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return Certs{}, err
	}
	leaf := &x509.Certificate{
		SerialNumber: serial.Add(serial, big.NewInt(2)), Subject: pkix.Name{CommonName: name},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		DNSNames: []string{name}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, ip := range ips {
		leaf.IPAddresses = append(leaf.IPAddresses, net.IP(ip.AsSlice()))
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, a.cert, &key.PublicKey, a.key)
	if err != nil {
		return Certs{}, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return Certs{}, err
	}
	c := Certs{
		CAFile:   filepath.Join(dir, prefix+"ca.pem"),
		CertFile: filepath.Join(dir, prefix+"cert.pem"),
		KeyFile:  filepath.Join(dir, prefix+"key.pem"),
		Roots:    x509.NewCertPool(),
	}
	c.Roots.AddCert(a.cert)
	for _, f := range []struct {
		path, typ string
		der       []byte
	}{{c.CAFile, "CERTIFICATE", a.der}, {c.CertFile, "CERTIFICATE", der}, {c.KeyFile, "PRIVATE KEY", keyDER}} {
		if err := os.WriteFile(f.path, pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), 0o600); err != nil {
			return Certs{}, fmt.Errorf("netlab: write %s: %w", f.path, err)
		}
	}
	c.Server, err = tls.X509KeyPair(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	return c, err
}

// issue writes a server certificate signed by the lab's one throw-away CA
// (made at first use; kamailio's and the TURN relay's share it).
func (l *Lab) issue(dir, prefix, name string, ips ...netip.Addr) (Certs, error) {
	l.mu.Lock()
	if l.ca == nil {
		ca, err := newAuthority("sipnat lab CA")
		if err != nil {
			l.mu.Unlock()
			return Certs{}, err
		}
		l.ca = ca
	}
	ca := l.ca
	l.mu.Unlock()
	return ca.issue(dir, prefix, name, ips...)
}

// DialTLS returns a function with the shape of net.Dialer.DialContext
// whose connections are made inside node and secured with TLS against the
// lab's CA (for the name the server's certificate carries: Server1's
// address works for the TURN relay, KamailioTLSName for kamailio).
func (l *Lab) DialTLS(node Node, serverName string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	dial := l.DialContext(node)
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		l.mu.Lock()
		roots := x509.NewCertPool()
		if l.ca != nil {
			roots.AddCert(l.ca.cert)
		}
		l.mu.Unlock()
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tc := tls.Client(c, &tls.Config{RootCAs: roots, ServerName: serverName})
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = c.Close()
			return nil, err
		}
		return tc, nil
	}
}
