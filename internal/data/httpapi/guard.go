package httpapi

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// Errors the source returns for requests its policy refuses; check with
// errors.Is. None of them is retried.
var (
	// ErrBlockedAddress: the host resolved to an address that is never
	// dialled (link-local, cloud metadata, unspecified), or to loopback
	// without a loopback host in allow_hosts.
	ErrBlockedAddress = errors.New("address not allowed")
	// ErrHostNotAllowed: a pagination link or redirect leads to a host
	// other than the url's that allow_hosts does not list.
	ErrHostNotAllowed = errors.New("host not allowed")
	// ErrInsecureURL: a URL is not HTTPS and no exception allows it.
	ErrInsecureURL = errors.New("insecure URL refused")
)

// metadataAddrs are cloud metadata services, refused whatever the rest of
// the policy says. 169.254.169.254 is also link-local; it is listed so the
// rule does not hang on that coincidence.
var metadataAddrs = []netip.Addr{
	netip.MustParseAddr("169.254.169.254"),
	netip.MustParseAddr("fd00:ec2::254"),
}

// blockReason says why ip may not be dialled, or "" if it may.
func blockReason(ip netip.Addr, loopbackOK bool) string {
	ip = ip.Unmap()
	for _, m := range metadataAddrs {
		if ip == m {
			return "a cloud metadata address"
		}
	}
	switch {
	case ip.IsUnspecified():
		return "an unspecified address"
	case ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast():
		return "a link-local address"
	case ip.IsLoopback() && !loopbackOK:
		return "a loopback address, and allow_hosts lists no loopback host"
	}
	return ""
}

// dialControl returns the net.Dialer Control function that enforces the
// address policy. It runs after name resolution, on the very address about
// to be connected to, so no DNS answer can route around it.
func dialControl(loopbackOK bool) func(network, address string, _ syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrBlockedAddress, address, err)
		}
		ip, err := netip.ParseAddr(host)
		if err != nil {
			return fmt.Errorf("%w: %s is not an IP address", ErrBlockedAddress, host)
		}
		if reason := blockReason(ip, loopbackOK); reason != "" {
			return fmt.Errorf("%w: %s is %s", ErrBlockedAddress, ip, reason)
		}
		return nil
	}
}
