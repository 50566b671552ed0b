package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/durable"
)

// File names and modes of the generated certificate, under <state>/tls.
const (
	TLSDir      = "tls"
	CertFile    = "server.crt"
	KeyFile     = "server.key"
	tlsDirMode  = fs.FileMode(0o700)
	tlsFileMode = fs.FileMode(0o600)
)

// selfSignedValidity is how long a generated certificate is valid.
const selfSignedValidity = 365 * 24 * time.Hour

// TLSConfig returns the server's TLS settings for cert: TLS 1.2 at least;
// for 1.2 only ECDHE key exchange with AEAD ciphers (AES-GCM,
// ChaCha20-Poly1305), so every connection has forward secrecy; key
// exchange over X25519 (with its post-quantum hybrid preferred when both
// sides know it) or P-256. TLS 1.3 suites are not configurable in Go and
// are all AEAD.
func TLSConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
		CurvePreferences: []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256},
		NextProtos:       []string{"h2", "http/1.1"},
	}
}

// Cert is the server's certificate with what an operator needs to know
// about it.
type Cert struct {
	TLS tls.Certificate
	// Fingerprint is the SHA-256 of the leaf certificate, hex pairs
	// separated by colons, for clients to pin or compare.
	Fingerprint string
	// SelfSigned is true for a certificate sluice generated.
	SelfSigned bool
	// Created is true when this call generated it (first start, or the
	// previous one expired or did not cover the listen host).
	Created bool
	// CertPath is the certificate file, so clients can be told to trust it.
	CertPath string
}

// LoadCert reads a certificate and key the operator supplied (PEM).
func LoadCert(certFile, keyFile string) (Cert, error) {
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return Cert{}, fmt.Errorf("loading TLS certificate %s and key %s: %w", certFile, keyFile, err)
	}
	return Cert{TLS: c, Fingerprint: Fingerprint(c.Certificate[0]), CertPath: certFile}, nil
}

// SelfSignedCert returns the certificate in dir/server.crt and
// dir/server.key, generating a new self-signed ECDSA P-256 one, valid for
// a year, when there is none, when it has expired at now, or when it does
// not cover every name in hosts (localhost, 127.0.0.1 and ::1 are always
// added). The directory is created 0700 and the files written 0600.
func SelfSignedCert(dir string, hosts []string, now time.Time) (Cert, error) {
	hosts = certHosts(hosts)
	certPath, keyPath := filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile)
	c, err := tls.LoadX509KeyPair(certPath, keyPath)
	switch {
	case err == nil:
		leaf, perr := x509.ParseCertificate(c.Certificate[0])
		if perr == nil && now.Before(leaf.NotAfter) && !now.Before(leaf.NotBefore) && covers(leaf, hosts) {
			return Cert{TLS: c, Fingerprint: Fingerprint(c.Certificate[0]), SelfSigned: true, CertPath: certPath}, nil
		}
	case errors.Is(err, fs.ErrNotExist):
	default:
		return Cert{}, fmt.Errorf("loading TLS certificate %s: %w (delete it and its key to have a new one generated)", certPath, err)
	}
	certPEM, keyPEM, err := generateSelfSigned(hosts, now)
	if err != nil {
		return Cert{}, err
	}
	if err := os.MkdirAll(dir, tlsDirMode); err != nil {
		return Cert{}, fmt.Errorf("creating %s: %w", dir, err)
	}
	if err := os.Chmod(dir, tlsDirMode); err != nil {
		return Cert{}, fmt.Errorf("restricting %s to 0700: %w", dir, err)
	}
	// The key first: a certificate without its key is never left behind
	// for the next start to load.
	if err := durable.WriteFile(keyPath, keyPEM, tlsFileMode); err != nil {
		return Cert{}, fmt.Errorf("writing %s: %w", keyPath, err)
	}
	if err := durable.WriteFile(certPath, certPEM, tlsFileMode); err != nil {
		return Cert{}, fmt.Errorf("writing %s: %w", certPath, err)
	}
	c, err = tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return Cert{}, fmt.Errorf("loading generated certificate: %w", err)
	}
	return Cert{TLS: c, Fingerprint: Fingerprint(c.Certificate[0]), SelfSigned: true, Created: true, CertPath: certPath}, nil
}

// certHosts adds the loopback names to hosts, drops empty and wildcard
// hosts (an unspecified address is no name a client connects to) and
// sorts the result.
func certHosts(hosts []string) []string {
	out := []string{"localhost", "127.0.0.1", "::1"}
	for _, h := range hosts {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		if ip := net.ParseIP(h); ip != nil && ip.IsUnspecified() {
			continue
		}
		if !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	slices.Sort(out)
	return out
}

func covers(leaf *x509.Certificate, hosts []string) bool {
	for _, h := range hosts {
		if leaf.VerifyHostname(h) != nil {
			return false
		}
	}
	return true
}

func generateSelfSigned(hosts []string, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating TLS key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, nil, fmt.Errorf("generating certificate serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"sluice"}, CommonName: "sluice server"},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(selfSignedValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		// Not a CA: browsers refuse a CA certificate as a server's own,
		// and clients trust this one directly (by file or fingerprint).
		IsCA: false,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("creating certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding TLS key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// Fingerprint is the SHA-256 of a DER certificate as colon-separated
// upper-case hex pairs, the form browsers and openssl show.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}
