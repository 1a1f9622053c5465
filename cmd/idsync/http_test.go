package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/idsync/idsync/internal/sim"
)

// TestDaemonReadiness: /readyz turns 503 once the source has failed for more than two
// schedule intervals, and back to 200 after it recovers.
func TestDaemonReadiness(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sim.Options{})
	e.cfg.Schedule = "@every 1s"
	e.writeConfig(e.cfg)
	d := e.startDaemon()
	eventually(t, 30*time.Second, "the start-up pass", func() bool {
		return d.metric("idsync_passes_total", map[string]string{"trigger": "startup", "result": "ok"}) == 1
	})
	if code, body := d.do("GET", "/readyz", ""); code != http.StatusOK {
		t.Fatalf("/readyz after a good pass: %d %s", code, body)
	}

	e.sims.MiniOrange.SetErrorRate(1.0, http.StatusInternalServerError)
	var body []byte
	eventually(t, 60*time.Second, "/readyz 503 while the source fails", func() bool {
		var code int
		code, body = d.do("GET", "/readyz", "")
		return code == http.StatusServiceUnavailable
	})
	var rz struct {
		Ready        bool      `json:"ready"`
		Reason       string    `json:"reason"`
		FailingSince time.Time `json:"failingSince"`
		Sources      []struct {
			Name     string `json:"name"`
			Complete bool   `json:"complete"`
		} `json:"sources"`
	}
	if err := json.Unmarshal(body, &rz); err != nil {
		t.Fatal(err)
	}
	if rz.Ready || rz.Reason == "" || rz.FailingSince.IsZero() || len(rz.Sources) != 1 || rz.Sources[0].Complete {
		t.Errorf("/readyz body does not explain the outage: %s", body)
	}
	if v := d.metric("idsync_source_read_complete", map[string]string{"source": "corp"}); v != 0 {
		t.Errorf("idsync_source_read_complete = %v during the outage", v)
	}
	if code, _ := d.do("GET", "/healthz", ""); code != http.StatusOK {
		t.Errorf("/healthz during the outage: %d (the process is alive)", code)
	}

	e.sims.MiniOrange.ClearFaults()
	eventually(t, 60*time.Second, "/readyz 200 after recovery", func() bool {
		code, _ := d.do("GET", "/readyz", "")
		return code == http.StatusOK
	})
	d.signal(syscall.SIGTERM)
	if code, _ := d.wait(25 * time.Second); code != 0 {
		t.Errorf("exit code %d", code)
	}
}

// TestDaemonTLS: with tls.cert_file/key_file the listener speaks only TLS, and SIGHUP picks
// up a renewed certificate without a restart.
func TestDaemonTLS(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sim.Options{})
	certFile, keyFile := filepath.Join(e.dir, "cert.pem"), filepath.Join(e.dir, "key.pem")
	first := writeSelfSigned(t, certFile, keyFile, 1)
	e.cfg.TLSCert, e.cfg.TLSKey = certFile, keyFile
	e.writeConfig(e.cfg)
	d := e.startDaemon("--no-initial-pass")

	pool := x509.NewCertPool()
	pool.AddCert(first)
	d.client = tlsClient(t, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
	serial := func() int64 {
		t.Helper()
		d.client.CloseIdleConnections() // a new handshake each time
		resp, err := d.client.Get(d.url("/healthz"))
		if err != nil {
			t.Fatalf("https /healthz: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("https /healthz: %d", resp.StatusCode)
		}
		return resp.TLS.PeerCertificates[0].SerialNumber.Int64()
	}
	if s := serial(); s != 1 {
		t.Fatalf("serial %d, want 1", s)
	}
	if code, _ := d.do("GET", "/api/v1/status", e.adminToken); code != http.StatusOK {
		t.Errorf("admin API over TLS: %d", code)
	}
	// Plain HTTP gets nothing useful.
	plain := &http.Client{Timeout: 5 * time.Second}
	if resp, err := plain.Get("http://" + d.addr + "/api/v1/status"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP on the TLS listener: %d", resp.StatusCode)
		}
	}
	plain.CloseIdleConnections()

	second := writeSelfSigned(t, certFile, keyFile, 2)
	pool.AddCert(second)
	d.signal(syscall.SIGHUP)
	eventually(t, 10*time.Second, "the reloaded certificate", func() bool { return serial() == 2 })

	d.signal(syscall.SIGTERM)
	if code, _ := d.wait(25 * time.Second); code != 0 {
		t.Errorf("exit code %d", code)
	}
}

// writeSelfSigned writes a self-signed certificate for 127.0.0.1 (atomically, as a renewal
// tool would) and returns it.
func writeSelfSigned(t *testing.T, certFile, keyFile string, serial int64) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "idsync test"},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(path, typ string, b []byte) {
		if err := os.WriteFile(path+".tmp", pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			t.Fatal(err)
		}
	}
	write(keyFile, "EC PRIVATE KEY", kb)
	write(certFile, "CERTIFICATE", der)
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}
