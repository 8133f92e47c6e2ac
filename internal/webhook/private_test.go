package webhook

import (
	"net/netip"
	"strings"
	"testing"
)

func TestIsPrivate(t *testing.T) {
	for _, a := range []string{
		"127.0.0.1", "127.5.6.7", "::1", // loopback
		"10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.1", // RFC 1918
		"fc00::1", "fd12:3456::1", // unique local
		"169.254.169.254", "fe80::1", "fe80::1%eth0", // link-local
		"0.0.0.0", "::", "0.1.2.3", // unspecified, this network
		"224.0.0.1", "239.255.255.250", "ff02::1", "ff01::1", // multicast
		"100.64.0.1", "100.127.255.254", // CGNAT
		"::ffff:10.0.0.1", "::ffff:127.0.0.1", // IPv4-mapped
	} {
		if !isPrivate(netip.MustParseAddr(a)) {
			t.Errorf("%s is not refused", a)
		}
	}
	for _, a := range []string{
		"8.8.8.8", "1.1.1.1", "100.63.255.255", "100.128.0.1", "172.32.0.1", "192.169.0.1",
		"2001:4860:4860::8888", "::ffff:8.8.8.8",
	} {
		if isPrivate(netip.MustParseAddr(a)) {
			t.Errorf("%s is refused", a)
		}
	}
}

func TestDenyPrivateControl(t *testing.T) {
	for addr, want := range map[string]string{
		"10.0.0.1:443":         "refused: private address 10.0.0.1",
		"[::ffff:10.0.0.1]:80": "refused: private address 10.0.0.1",
		"[fe80::1%eth0]:80":    "refused: private address fe80::1",
		"nonsense":             "refused: private address nonsense",
		"93.184.216.34:443":    "",
	} {
		err := denyPrivate("tcp4", addr, nil)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != want {
			t.Errorf("denyPrivate(%s) = %q, want %q", addr, got, want)
		}
	}
}

func TestTruncate(t *testing.T) {
	long := strings.Repeat("é", maxErrorLen)
	got := truncate(long)
	if len(got) > maxErrorLen+len("…") || !strings.HasSuffix(got, "…") || !strings.HasPrefix(long, strings.TrimSuffix(got, "…")) {
		t.Errorf("truncate: %q", got)
	}
	if truncate("short") != "short" {
		t.Error("truncate changed a short text")
	}
}
